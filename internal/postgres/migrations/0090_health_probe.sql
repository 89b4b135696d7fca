-- The readiness probe's row. /readyz rewrites it in a committed
-- transaction (WAL flushed), so a database that cannot take writes — a
-- full disk, a read-only standby — is reported not ready, and ready again
-- as soon as the write succeeds. It holds a time, nothing about any
-- installation.
CREATE TABLE health_probe (
    id        smallint    PRIMARY KEY CHECK (id = 1),
    probed_at timestamptz NOT NULL
);
