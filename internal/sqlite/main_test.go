package sqlite_test

import (
	"testing"

	"go.uber.org/goleak"
)

// database/sql starts a goroutine per open database; every test must close
// what it opens.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
