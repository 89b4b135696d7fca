package batchcodec

import (
	"encoding/json"
	"testing"
)

// validNumber follows the JSON grammar: it agrees with encoding/json on
// every string that starts like a number.
func TestValidNumber(t *testing.T) {
	for _, s := range []string{
		"0", "-0", "7", "-12", "120", "0.5", "-0.25", "1e9", "1E+9", "2.5e-3", "10.0E10",
		"", "-", "01", "-01", "1.", ".5", "1e", "1e+", "1.e3", "+1", "1x", "1.5.2", "1e3.5", "0x1", " 1", "1 ", "--1", "1ee2",
	} {
		want := json.Valid([]byte(s)) && s[0] != ' ' && s[len(s)-1] != ' '
		if got := validNumber(s); got != want {
			t.Errorf("validNumber(%q) = %v, want %v", s, got, want)
		}
	}
}
