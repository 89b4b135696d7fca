package memlog_test

import (
	"testing"

	"github.com/provisionhq/provision/internal/memlog"
	"github.com/provisionhq/provision/internal/storetest"
)

func TestContract(t *testing.T) {
	storetest.Run(t, func(*testing.T) storetest.Store { return memlog.New() })
}
