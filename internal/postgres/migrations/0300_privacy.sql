-- Privacy operations (internal/privacy) on the scale-out store: erasure
-- tombstones, requests and receipts, the append-only audit log and
-- retention progress. Nothing here holds an installation id except a
-- pending request, which holds it only until its erasure completes.

-- The SHA-256 (hex) of each installation whose erasure was requested.
CREATE TABLE privacy_tombstones (
    id_hash   text PRIMARY KEY,
    erased_at timestamptz NOT NULL
);

-- Refuse, inside the inserting transaction, any event of an erased
-- installation: a late batch, a redelivered message or a replay cannot
-- bring it back. A BEFORE ROW trigger on the partitioned table applies to
-- every partition and to COPY.
CREATE FUNCTION privacy_refuse_erased() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM privacy_tombstones
               WHERE id_hash = encode(sha256(convert_to(NEW.installation_id, 'UTF8')), 'hex')) THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER events_refuse_erased BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION privacy_refuse_erased();

CREATE TABLE privacy_requests (
    request_id              text PRIMARY KEY,
    id_hash                 text NOT NULL,
    source                  text NOT NULL,
    status                  text NOT NULL,
    requested_at            bigint NOT NULL, -- Unix nanoseconds: receipts and the audit hash keep full precision
    completed_at            bigint NOT NULL DEFAULT 0,
    removed                 text NOT NULL DEFAULT '',
    pending_installation_id text
);
CREATE INDEX privacy_requests_pending ON privacy_requests (requested_at) WHERE status = 'pending';

-- The hash-chained audit log of erasures; append-only for every client.
CREATE TABLE privacy_audit (
    seq          bigint PRIMARY KEY,
    request_id   text NOT NULL,
    id_hash      text NOT NULL,
    source       text NOT NULL,
    requested_at bigint NOT NULL, -- Unix nanoseconds, as hashed
    completed_at bigint NOT NULL,
    removed      text NOT NULL,   -- the JSON as hashed, byte for byte
    prev         text NOT NULL,
    hash         text NOT NULL
);
CREATE FUNCTION privacy_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the privacy audit log is append-only';
END
$$;
CREATE TRIGGER privacy_audit_no_change BEFORE UPDATE OR DELETE ON privacy_audit
    FOR EACH STATEMENT EXECUTE FUNCTION privacy_audit_append_only();

CREATE TABLE privacy_retention (
    rule    text PRIMARY KEY,
    through timestamptz NOT NULL,
    seq     bigint NOT NULL
);

-- Retention selects events by type and event time.
CREATE INDEX events_type_time ON events (event_type, event_time);
