package sqlite

import (
	"database/sql"
	_ "embed"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/rollup/rolluptest"
)

//go:embed migrations/0100_rollup.sql
var rollupSchema string

func openRollupStore(t *testing.T) *RollupStore {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "rollup.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(rollupSchema); err != nil {
		t.Fatal(err)
	}
	return NewRollupStore(db)
}

func TestRollupStoreContract(t *testing.T) {
	rolluptest.StoreContract(t, func(t *testing.T) rollup.Store { return openRollupStore(t) })
}
