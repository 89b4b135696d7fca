-- Rollups: per-day mergeable cells derived from the log. They hold no
-- installation id: installs is a HyperLogLog sketch of keyed hashes.
CREATE TABLE rollup_cells (
    day       text   NOT NULL, -- YYYY-MM-DD, UTC
    view      text   NOT NULL,
    dims      text   NOT NULL,
    events    bigint NOT NULL,
    weight    bigint NOT NULL,
    failures  bigint NOT NULL,
    installs  bytea,
    durations bytea,
    PRIMARY KEY (day, view, dims)
);
CREATE INDEX rollup_cells_view_day ON rollup_cells (view, day);

-- Issuer and signer certificates named by cells: public objects.
CREATE TABLE rollup_certs (
    view        text    NOT NULL,
    id          text    NOT NULL,
    subject     text    NOT NULL,
    issuer      text    NOT NULL,
    not_before  timestamptz,
    not_after   timestamptz,
    self_signed boolean NOT NULL,
    der         bytea,
    PRIMARY KEY (view, id)
);

-- Checkpoints live beside the cells, so a merge and the move of its
-- checkpoint commit together.
CREATE TABLE rollup_checkpoints (
    consumer text PRIMARY KEY,
    seq      bigint NOT NULL
);

-- The key that hashes installation ids before they enter a sketch; it
-- survives a reset so that a rebuild reproduces the same sketches.
CREATE TABLE rollup_key (
    id  integer PRIMARY KEY CHECK (id = 1),
    key bytea   NOT NULL
);
