package natslog_test

import (
	"testing"

	"github.com/provisionhq/provision/internal/natslog/natstest"
	"github.com/provisionhq/provision/internal/storetest"
)

// TestLogContract runs the log part of the store contract over JetStream.
// Checkpoints are not the log's: consumers keep theirs in the store.
func TestLogContract(t *testing.T) {
	storetest.RunLog(t, func(t *testing.T) storetest.Log {
		return open(t, natstest.Config(t, natstest.URL(t)))
	})
}
