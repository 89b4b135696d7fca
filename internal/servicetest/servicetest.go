// Package servicetest is what tests of an external service (PostgreSQL,
// NATS) share: the service's address from the environment, and names no
// other test uses.
package servicetest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
)

// URL returns the value of env, the variable that gives a test service's
// address. When it is unset the test is skipped, unless
// PROVISION_REQUIRE_SERVICES=1 (as in CI) makes that a failure.
func URL(tb testing.TB, env string) string {
	tb.Helper()
	url := os.Getenv(env)
	if url == "" {
		if os.Getenv("PROVISION_REQUIRE_SERVICES") == "1" {
			tb.Fatal(env + " is not set and PROVISION_REQUIRE_SERVICES=1")
		}
		tb.Skip(env + " is not set")
	}
	return url
}

// Name returns prefix followed by 12 random lower-case hex digits.
func Name(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
