-- The forwarders' state besides their checkpoints (internal/forward).

-- Which installation was counted on which UTC day for which recipient, so
-- that each is counted at most once a day; pruned after a few days.
CREATE TABLE forward_sent (
    recipient       text        NOT NULL,
    installation_id text        NOT NULL,
    day             text        NOT NULL, -- YYYY-MM-DD
    sent_at         timestamptz NOT NULL,
    PRIMARY KEY (recipient, installation_id, day)
);
CREATE INDEX forward_sent_day ON forward_sent (day);
CREATE INDEX forward_sent_installation ON forward_sent (installation_id);

-- Counts that were not delivered after the bounded attempts, or that the
-- recipient refused for good; redriven from here without the log.
CREATE TABLE forward_dead_letters (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient       text        NOT NULL,
    installation_id text        NOT NULL,
    day             text        NOT NULL,
    seq             bigint      NOT NULL,
    count_json      bytea       NOT NULL,
    attempts        integer     NOT NULL,
    reason          text        NOT NULL,
    retryable       boolean     NOT NULL,
    created_at      timestamptz NOT NULL
);
CREATE INDEX forward_dead_letters_recipient ON forward_dead_letters (recipient, id);
CREATE INDEX forward_dead_letters_installation ON forward_dead_letters (installation_id);
