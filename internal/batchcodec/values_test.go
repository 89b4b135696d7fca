package batchcodec

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/provisionhq/provision"
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

// The fields of every event are stored sorted by key, whatever the keys of
// the events of its type before it (the encoder remembers their order),
// so that the same batch always stores the same bytes.
func TestFieldsStoredSortedByKey(t *testing.T) {
	sets := [][]string{
		{"c", "a", "b"},
		{"b", "c", "a"},      // the same keys
		{"a", "b", "d"},      // as many, one other
		{"d", "a"},           // fewer
		{"e", "a", "b", "d"}, // more
		{"a", "b", "c"},
	}
	var entries []Entry
	for i, keys := range sets {
		fields := map[string]any{}
		for _, k := range keys {
			fields[k] = k + "-value"
		}
		entries = append(entries, Entry{Offset: int64(i), Event: provision.Event{ID: "e", Type: "task", Fields: fields}})
	}
	first, err := Encode(entries)
	if err != nil {
		t.Fatal(err)
	}
	err = Each(first, func(v *EventView) error {
		want := slices.Sorted(slices.Values(sets[v.Offset]))
		var got []string
		for _, f := range v.fields {
			got = append(got, string(f.key))
		}
		if !slices.Equal(got, want) {
			t.Errorf("event %d stored keys %q, want %q", v.Offset, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		again, err := Encode(entries)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, first) {
			t.Fatal("the same batch stored different bytes")
		}
	}
}
