-- The log of accepted events and the batches that brought them.
--
-- events is both the ordered log (seq) and the raw event store. It is laid
-- out for the reports and for the privacy jobs:
--   * day (UTC day of the event time, days since 1970-01-01) and type lead
--     an index, so "events of type T on day D" and "purge everything before
--     day D" are range scans;
--   * installation_id has its own column and index, so erasure of one
--     installation is an index lookup, not a scan of the JSON;
--   * country and subdivision repeat the server-derived location.country
--     and location.subdivision items of the event (present only for event
--     types the manifest declares them for); the client address is never
--     stored.
-- seq is AUTOINCREMENT so that a position is never reused after the newest
-- rows are purged or erased: consumers' checkpoints stay meaningful.
CREATE TABLE events (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL,
    batch_id        TEXT    NOT NULL,
    installation_id TEXT    NOT NULL,
    region          TEXT    NOT NULL,
    country         TEXT    NOT NULL DEFAULT '',
    subdivision     TEXT    NOT NULL DEFAULT '',
    received_at     INTEGER NOT NULL, -- Unix nanoseconds
    day             INTEGER NOT NULL, -- days since the Unix epoch, UTC, of time
    type            TEXT    NOT NULL,
    time            INTEGER NOT NULL, -- Unix nanoseconds
    fields          TEXT    NOT NULL  -- JSON object of manifest item id to value
);
CREATE UNIQUE INDEX events_event_id ON events (event_id);
CREATE INDEX events_day_type ON events (day, type);
CREATE INDEX events_installation ON events (installation_id);

-- batches remembers every batch id with the answer it got, so that a resend
-- gets the same answer and stores nothing twice.
CREATE TABLE batches (
    batch_id    TEXT    PRIMARY KEY,
    received_at INTEGER NOT NULL, -- Unix nanoseconds
    response    BLOB    NOT NULL
) WITHOUT ROWID;
CREATE INDEX batches_received_at ON batches (received_at);

-- checkpoints keeps each consumer's position in the log.
CREATE TABLE checkpoints (
    consumer TEXT    PRIMARY KEY,
    seq      INTEGER NOT NULL
) WITHOUT ROWID;
