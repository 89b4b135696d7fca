-- Rollups: per-day mergeable cells derived from the log. They hold no
-- installation id: installs is a HyperLogLog sketch of keyed hashes.
CREATE TABLE rollup_cells (
	day       TEXT    NOT NULL, -- YYYY-MM-DD, UTC
	view      TEXT    NOT NULL,
	dims      TEXT    NOT NULL,
	events    INTEGER NOT NULL,
	weight    INTEGER NOT NULL,
	failures  INTEGER NOT NULL,
	installs  BLOB,
	durations BLOB,
	PRIMARY KEY (day, view, dims)
) WITHOUT ROWID;

CREATE INDEX rollup_cells_view_day ON rollup_cells (view, day);

-- Issuer and signer certificates named by cells: public objects.
CREATE TABLE rollup_certs (
	view        TEXT    NOT NULL,
	id          TEXT    NOT NULL,
	subject     TEXT    NOT NULL,
	issuer      TEXT    NOT NULL,
	not_before  TEXT    NOT NULL, -- RFC 3339, '' when unknown
	not_after   TEXT    NOT NULL,
	self_signed INTEGER NOT NULL,
	der         BLOB,
	PRIMARY KEY (view, id)
) WITHOUT ROWID;

-- The rollup consumers' checkpoints live beside the cells so that a merge
-- and the move of its checkpoint commit together: a crash never counts twice.
CREATE TABLE rollup_checkpoints (
	consumer TEXT    PRIMARY KEY,
	seq      INTEGER NOT NULL
) WITHOUT ROWID;

-- The key that hashes installation ids before they enter a sketch. It
-- survives a rebuild, so that a rebuild reproduces the same sketches.
CREATE TABLE rollup_key (
	id  INTEGER PRIMARY KEY CHECK (id = 1),
	key BLOB    NOT NULL
);
