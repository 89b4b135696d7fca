-- The log is a log of batches (replaces events, event_keys and batches).
--
-- An accepted batch is one row of log_batches, written with COPY: its
-- events encoded together and compressed (internal/batchcodec, the same
-- bytes as the embedded store), with what the server knows of the batch
-- once. Nothing is indexed per event.
--
-- This is a reset of the scale-out log: the rows of the old tables are not
-- converted (pre-1.0; the embedded store converts its rows). The JetStream
-- stream in front still holds the submissions of its max-age, and a new
-- durable consumer can replay them into the new tables.
DROP TABLE events;
DROP TABLE event_keys;
DROP TABLE batches;

-- A batch covers the positions seq_first..seq_end; each event keeps its
-- offset inside the payload, so retention and erasure that remove some
-- events of a batch move none of the others. Partitioned by the UTC day of
-- receipt: retention drops whole days.
CREATE TABLE log_batches (
    seq_end           bigint      NOT NULL,
    seq_first         bigint      NOT NULL,
    events            integer     NOT NULL,
    batch_id          text        NOT NULL,
    installation_id   text        NOT NULL,
    region            text        NOT NULL,
    -- The server-derived location is not a column: it is in the fields of
    -- the events whose type declares it, inside the payload.
    received_at       timestamptz NOT NULL,
    received_at_nanos smallint    NOT NULL,
    day_min           integer     NOT NULL, -- UTC days since the epoch of the oldest event time
    day_max           integer     NOT NULL,
    types             text        NOT NULL, -- ' a b ': the event types held
    payload           bytea       NOT NULL
) PARTITION BY RANGE (received_at);
CREATE INDEX log_batches_seq ON log_batches (seq_end);
-- The narrow per-installation index export and erasure use.
CREATE INDEX log_batches_installation ON log_batches (installation_id);
CREATE INDEX log_batches_day ON log_batches (day_min);

-- Each batch id with the answer it got, per installation: a resend by the
-- same installation gets the same answer and stores nothing; the same id
-- from another installation is another batch. Not partitioned (the key
-- must hold across days); retention deletes by received_at.
CREATE TABLE batch_keys (
    installation_id text        NOT NULL,
    batch_id        text        NOT NULL,
    received_at     timestamptz NOT NULL,
    response        bytea       NOT NULL,
    PRIMARY KEY (installation_id, batch_id)
);
CREATE INDEX batch_keys_received_at ON batch_keys (received_at);

-- Nothing of an erased installation is stored again (0300_privacy).
CREATE TRIGGER log_batches_refuse_erased BEFORE INSERT ON log_batches
    FOR EACH ROW EXECUTE FUNCTION privacy_refuse_erased();
CREATE TRIGGER batch_keys_refuse_erased BEFORE INSERT ON batch_keys
    FOR EACH ROW EXECUTE FUNCTION privacy_refuse_erased();
