-- The forwarders' state besides their checkpoints (internal/forward).

-- Which installation was counted on which UTC day for which recipient, so
-- that each is counted at most once a day. Pruned after a few days: the
-- rows name installations and are needed no longer than that.
CREATE TABLE forward_sent (
    recipient       TEXT    NOT NULL,
    installation_id TEXT    NOT NULL,
    day             TEXT    NOT NULL, -- YYYY-MM-DD
    sent_at         INTEGER NOT NULL, -- Unix nanoseconds
    PRIMARY KEY (recipient, installation_id, day)
) WITHOUT ROWID;
CREATE INDEX forward_sent_day ON forward_sent (day);
CREATE INDEX forward_sent_installation ON forward_sent (installation_id);

-- Counts that were not delivered after the bounded attempts, or that the
-- recipient refused for good; redriven from here without the log.
CREATE TABLE forward_dead_letters (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    recipient       TEXT    NOT NULL,
    installation_id TEXT    NOT NULL,
    day             TEXT    NOT NULL,
    seq             INTEGER NOT NULL,
    count_json      BLOB    NOT NULL,
    attempts        INTEGER NOT NULL,
    reason          TEXT    NOT NULL,
    retryable       INTEGER NOT NULL, -- 0 or 1
    created_at      INTEGER NOT NULL  -- Unix nanoseconds
);
CREATE INDEX forward_dead_letters_recipient ON forward_dead_letters (recipient, id);
CREATE INDEX forward_dead_letters_installation ON forward_dead_letters (installation_id);
