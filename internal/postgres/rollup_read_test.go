package postgres_test

import (
	"testing"

	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"github.com/provisionhq/provision/internal/rollup/rolluptest"
)

// TestRollupReadInPlace checks the rollups of stored events read in place
// against those of records.
func TestRollupReadInPlace(t *testing.T) {
	rolluptest.ReadInPlace(t, pgtest.Open(t))
}
