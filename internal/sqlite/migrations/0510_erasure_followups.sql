-- What an erasure leaves to do after it completed, kept in the store so a
-- process that stops in between still does it (internal/privacy,
-- internal/rollup).

-- The days whose rollup cells an erasure request makes stale. Held (due =
-- 0) before the erasure deletes anything, due once it completed, deleted
-- by the rollup refresh pass that recomputed them. No installation data:
-- a day and a request id.
CREATE TABLE rollup_refresh (
    day        TEXT    NOT NULL, -- YYYY-MM-DD
    request_id TEXT    NOT NULL,
    due        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, request_id)
) WITHOUT ROWID;

-- One deletion notice per recipient per erasure request, delivered by the
-- server's notice job with retries. The installation id is what the
-- recipient deletes (Google Analytics' client id, the webhook's
-- installation_id), so a pending notice holds it; it is set to NULL when
-- the recipient confirms, and the row then keeps only the outcome for the
-- receipt.
CREATE TABLE privacy_notices (
    request_id      TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    installation_id TEXT,             -- NULL once confirmed
    state           TEXT    NOT NULL, -- pending | confirmed
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_at         INTEGER NOT NULL, -- Unix nanoseconds: the next attempt
    confirmed_at    INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (request_id, recipient)
) WITHOUT ROWID;
CREATE INDEX privacy_notices_due ON privacy_notices (next_at) WHERE state = 'pending';
