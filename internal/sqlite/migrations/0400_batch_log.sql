-- The log is a log of batches (replaces events and batches of 0001_log).
--
-- An accepted batch is appended once, as one row of log_batches: its
-- events encoded together and compressed (internal/batchcodec), with what
-- the server knows of the batch once. Nothing is indexed per event, so an
-- append writes two B-trees per batch where the old layout wrote four per
-- event.
--
-- This migration comes after the privacy range because its triggers name
-- privacy_tombstones (0300). Opening the store moves the rows of the old
-- tables into these and drops the old tables (see convert.go).

-- A batch covers the log positions seq_first..seq_end. seq_end is the key
-- and AUTOINCREMENT, so sqlite_sequence keeps the highest position ever
-- handed out: a position is never reused after retention or erasure
-- removes the newest batches, and consumers' checkpoints stay meaningful.
-- Each event keeps its offset from seq_first inside the payload, so
-- removing some events of a batch moves none of the others.
CREATE TABLE log_batches (
    seq_end         INTEGER PRIMARY KEY AUTOINCREMENT,
    seq_first       INTEGER NOT NULL,
    events          INTEGER NOT NULL, -- events still held
    batch_id        TEXT    NOT NULL,
    installation_id TEXT    NOT NULL,
    region          TEXT    NOT NULL,
    -- The server-derived location is not a column: it is in the fields of
    -- the events whose type declares it, inside the payload.
    received_at     INTEGER NOT NULL, -- Unix nanoseconds
    day_min         INTEGER NOT NULL, -- UTC days since the epoch of the oldest event time
    day_max         INTEGER NOT NULL,
    types           TEXT    NOT NULL, -- ' a b ': the event types held
    payload         BLOB    NOT NULL
);
-- Retention picks old batches by their oldest event.
CREATE INDEX log_batches_day ON log_batches (day_min);

-- Each batch id with the answer it got, per installation: a resend by the
-- same installation gets the same answer and stores nothing; the same id
-- from another installation is another batch. The key's prefix is also the
-- per-installation index export and erasure use (installation -> batches).
-- seq_end is 0 when no event of the batch was stored.
CREATE TABLE batch_keys (
    installation_id TEXT    NOT NULL,
    batch_id        TEXT    NOT NULL,
    received_at     INTEGER NOT NULL, -- Unix nanoseconds
    seq_end         INTEGER NOT NULL,
    response        BLOB    NOT NULL,
    PRIMARY KEY (installation_id, batch_id)
) WITHOUT ROWID;

-- Nothing of an erased installation is stored again (see 0300_privacy):
-- one check per batch now, not per event.
CREATE TRIGGER log_batches_refuse_erased BEFORE INSERT ON log_batches
WHEN EXISTS (SELECT 1 FROM privacy_tombstones WHERE id_hash = provision_sha256_hex(NEW.installation_id))
BEGIN
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER batch_keys_refuse_erased BEFORE INSERT ON batch_keys
WHEN EXISTS (SELECT 1 FROM privacy_tombstones WHERE id_hash = provision_sha256_hex(NEW.installation_id))
BEGIN
    SELECT RAISE(IGNORE);
END;
