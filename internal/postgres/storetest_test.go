package postgres_test

import (
	"testing"

	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"github.com/provisionhq/provision/internal/storetest"
)

// The same contract as the embedded store.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Store { return pgtest.Open(t) })
}
