-- Privacy operations (internal/privacy): erasure tombstones, requests and
-- their receipts, the append-only audit log, and retention progress.
-- Nothing here holds an installation id except a pending request, which
-- holds it only until its erasure completes.

-- The SHA-256 (hex) of each installation whose erasure was requested. The
-- triggers below consult it inside every insert that names an
-- installation, in the inserting transaction, so nothing of an erased
-- installation can be stored again: not by a late batch, a resend, a
-- forwarder or a replay.
CREATE TABLE privacy_tombstones (
    id_hash   TEXT    PRIMARY KEY,
    erased_at INTEGER NOT NULL -- Unix nanoseconds
) WITHOUT ROWID;

CREATE TRIGGER events_refuse_erased BEFORE INSERT ON events
WHEN EXISTS (SELECT 1 FROM privacy_tombstones WHERE id_hash = provision_sha256_hex(NEW.installation_id))
BEGIN
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER forward_sent_refuse_erased BEFORE INSERT ON forward_sent
WHEN EXISTS (SELECT 1 FROM privacy_tombstones WHERE id_hash = provision_sha256_hex(NEW.installation_id))
BEGIN
    SELECT RAISE(IGNORE);
END;

CREATE TRIGGER forward_dead_letters_refuse_erased BEFORE INSERT ON forward_dead_letters
WHEN EXISTS (SELECT 1 FROM privacy_tombstones WHERE id_hash = provision_sha256_hex(NEW.installation_id))
BEGIN
    SELECT RAISE(IGNORE);
END;

-- Erasure requests; a complete one is its receipt. pending_installation_id
-- is set only while the erasure is pending, so that an interrupted erasure
-- can be finished, and cleared in the transaction that completes it.
CREATE TABLE privacy_requests (
    request_id              TEXT    PRIMARY KEY,
    id_hash                 TEXT    NOT NULL,
    source                  TEXT    NOT NULL,
    status                  TEXT    NOT NULL,
    requested_at            INTEGER NOT NULL, -- Unix nanoseconds
    completed_at            INTEGER NOT NULL DEFAULT 0,
    removed                 TEXT    NOT NULL DEFAULT '', -- JSON of privacy.Removed
    pending_installation_id TEXT
) WITHOUT ROWID;
CREATE INDEX privacy_requests_pending ON privacy_requests (status) WHERE status = 'pending';

-- The audit log of erasures, hash-chained: each hash covers the entry and
-- the previous hash. The triggers make it append-only for every client of
-- the database, not only for this program.
CREATE TABLE privacy_audit (
    seq          INTEGER PRIMARY KEY,
    request_id   TEXT    NOT NULL,
    id_hash      TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    requested_at INTEGER NOT NULL,
    completed_at INTEGER NOT NULL,
    removed      TEXT    NOT NULL,
    prev         TEXT    NOT NULL,
    hash         TEXT    NOT NULL
);

CREATE TRIGGER privacy_audit_no_update BEFORE UPDATE ON privacy_audit
BEGIN
    SELECT RAISE(ABORT, 'the privacy audit log is append-only');
END;

CREATE TRIGGER privacy_audit_no_delete BEFORE DELETE ON privacy_audit
BEGIN
    SELECT RAISE(ABORT, 'the privacy audit log is append-only');
END;

-- How far each retention strip rule has been applied.
CREATE TABLE privacy_retention (
    rule    TEXT    PRIMARY KEY,
    through INTEGER NOT NULL, -- Unix nanoseconds
    seq     INTEGER NOT NULL
) WITHOUT ROWID;
