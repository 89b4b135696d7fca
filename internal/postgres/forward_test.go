package postgres_test

import (
	"testing"

	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/forward/forwardtest"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
)

func TestForwardStateContract(t *testing.T) {
	t.Parallel()
	forwardtest.TestState(t, func(t *testing.T) forward.State { return pgtest.Open(t).ForwardState() })
}
