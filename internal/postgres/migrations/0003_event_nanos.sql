-- timestamptz keeps microseconds; agents and ingest stamp nanoseconds. The
-- rest (0..999 ns) is kept beside, so a record reads back exactly as it was
-- appended, as it does from the embedded store.
ALTER TABLE events
    ADD COLUMN received_at_nanos smallint NOT NULL DEFAULT 0,
    ADD COLUMN event_time_nanos  smallint NOT NULL DEFAULT 0;
