package servicetest

import (
	"regexp"
	"testing"
)

func TestURL(t *testing.T) {
	t.Setenv("PROVISION_TEST_SOMETHING", "x://127.0.0.1:1")
	if got := URL(t, "PROVISION_TEST_SOMETHING"); got != "x://127.0.0.1:1" {
		t.Errorf("got %q", got)
	}
	t.Setenv("PROVISION_TEST_SOMETHING", "")
	t.Setenv("PROVISION_REQUIRE_SERVICES", "")
	t.Run("skips", func(t *testing.T) {
		URL(t, "PROVISION_TEST_SOMETHING")
		t.Error("did not skip")
	})
}

func TestURLFailsWhenServicesAreRequired(t *testing.T) {
	t.Setenv("PROVISION_TEST_SOMETHING", "")
	t.Setenv("PROVISION_REQUIRE_SERVICES", "1")
	ft := &fatalT{T: t}
	func() {
		defer func() { _ = recover() }()
		URL(ft, "PROVISION_TEST_SOMETHING")
	}()
	if !ft.failed {
		t.Error("a missing service did not fail the test")
	}
}

// fatalT records Fatal instead of ending the test.
type fatalT struct {
	*testing.T
	failed bool
}

func (f *fatalT) Fatal(args ...any) { f.failed = true; panic("fatal") }
func (f *fatalT) Skip(args ...any)  { panic("skip") }

func TestName(t *testing.T) {
	a, b := Name("t_"), Name("t_")
	if !regexp.MustCompile(`^t_[0-9a-f]{12}$`).MatchString(a) || a == b {
		t.Errorf("names %q, %q", a, b)
	}
}
