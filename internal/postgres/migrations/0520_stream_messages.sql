-- The JetStream messages the workers are done with, by installation, so
-- that erasure deletes exactly those messages instead of reading the whole
-- stream. A worker records a message after its write committed and before
-- it acknowledges it; a message it dead-letters is recorded too. The id is
-- kept as its SHA-256, as the tombstones keep it.
CREATE TABLE stream_messages (
    id_hash    text   NOT NULL,
    stream_seq bigint NOT NULL,
    PRIMARY KEY (id_hash, stream_seq)
);
-- Retention forgets the messages the stream no longer holds.
CREATE INDEX stream_messages_seq ON stream_messages (stream_seq);
