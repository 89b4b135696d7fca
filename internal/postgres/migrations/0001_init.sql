-- Batches already written, by id, with the answer given for them: a resend
-- of the same batch id gets this answer again and writes nothing. The key
-- tables (batches, event_keys) are small fixed rows that must be unique
-- across every day, so they are not partitioned; retention deletes from them
-- by received_at. The bulk of the data (events) is partitioned by day and
-- retention drops whole partitions.
CREATE TABLE batches (
    batch_id    text PRIMARY KEY,
    received_at timestamptz NOT NULL,
    response    bytea NOT NULL
);
CREATE INDEX batches_received_at ON batches (received_at);

-- Every event id ever stored (within retention): events are unique by id.
CREATE TABLE event_keys (
    event_id    text PRIMARY KEY,
    received_at timestamptz NOT NULL
);
CREATE INDEX event_keys_received_at ON event_keys (received_at);

-- The accepted events, one partition per UTC day of receipt.
CREATE TABLE events (
    seq             bigint NOT NULL,
    received_at     timestamptz NOT NULL,
    batch_id        text NOT NULL,
    installation_id text NOT NULL,
    region          text NOT NULL,
    country         text NOT NULL,
    subdivision     text NOT NULL,
    event_id        text NOT NULL,
    event_type      text NOT NULL,
    event_time      timestamptz NOT NULL,
    fields          jsonb NOT NULL
) PARTITION BY RANGE (received_at);
CREATE INDEX events_seq ON events (seq);
CREATE INDEX events_installation ON events (installation_id);

-- The highest sequence number handed out. Writers take its row lock for the
-- rest of their transaction, so sequence numbers become visible in commit
-- order and a reader that has seen seq N never later finds a smaller one.
CREATE TABLE log_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq       bigint NOT NULL
);
INSERT INTO log_head (singleton, seq) VALUES (true, 0);

-- Each consumer's position in the log.
CREATE TABLE checkpoints (
    consumer   text PRIMARY KEY,
    seq        bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
