-- The readiness probe's row. /readyz rewrites it in a synced transaction,
-- so a store whose disk is full, or whose file cannot be written, is
-- reported not ready, and ready again as soon as the write succeeds. It
-- holds a time and random padding, nothing about any installation.
CREATE TABLE health_probe (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    probed_at INTEGER NOT NULL,
    pad       BLOB    NOT NULL
);
