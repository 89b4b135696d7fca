-- The estimate of each cell's installs sketch, written with the sketch, so
-- that a report reads per-day distinct counts as numbers instead of
-- decoding and estimating a 64 KiB sketch per cell. NULL on rows written
-- before this column existed: readers estimate those, and the next merge,
-- refresh or rebuild of the cell stores it.
ALTER TABLE rollup_cells ADD COLUMN installs_distinct bigint;
