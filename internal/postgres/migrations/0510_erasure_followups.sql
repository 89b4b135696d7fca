-- What an erasure leaves to do after it completed, kept in the store so a
-- process that stops in between still does it (internal/privacy,
-- internal/rollup), and the stream positions the workers stored.

-- The days whose rollup cells an erasure request makes stale. Held (due
-- false) before the erasure deletes anything, due once it completed,
-- deleted by the rollup refresh pass that recomputed them. No installation
-- data: a day and a request id.
CREATE TABLE rollup_refresh (
    day        text    NOT NULL, -- YYYY-MM-DD
    request_id text    NOT NULL,
    due        boolean NOT NULL DEFAULT false,
    PRIMARY KEY (day, request_id)
);

-- One deletion notice per recipient per erasure request, delivered by the
-- server's notice job with retries. The installation id is what the
-- recipient deletes (Google Analytics' client id, the webhook's
-- installation_id), so a pending notice holds it; it is set to NULL when
-- the recipient confirms, and the row then keeps only the outcome for the
-- receipt.
CREATE TABLE privacy_notices (
    request_id      text   NOT NULL,
    recipient       text   NOT NULL,
    installation_id text,             -- NULL once confirmed
    state           text   NOT NULL,  -- pending | confirmed
    attempts        integer NOT NULL DEFAULT 0,
    next_at         bigint NOT NULL,  -- Unix nanoseconds: the next attempt
    confirmed_at    bigint NOT NULL DEFAULT 0,
    last_error      text   NOT NULL DEFAULT '',
    PRIMARY KEY (request_id, recipient)
);
CREATE INDEX privacy_notices_due ON privacy_notices (next_at) WHERE state = 'pending';
