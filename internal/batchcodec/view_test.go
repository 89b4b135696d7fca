package batchcodec

import (
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"

	"github.com/provisionhq/provision/internal/manifest"
)

// TestEachAgreesWithDecode checks that the views of Each give, for every
// field, what the maps of Decode hold, in both formats, and for keys the
// events do not have.
func TestEachAgreesWithDecode(t *testing.T) {
	entries := sample()
	entries[2].Event.Fields = map[string]any{"n": json.Number("7"), "b": true, "z": nil,
		"bad\xffkey": "x", "odd": map[string]any{"k": "v"}, "s": "bad\xffvalue",
		"neg": int64(-12), "e": json.Number("1e3"), "huge": json.Number("99999999999999999999"), "f": 12.0, "sn": "5"}
	p2, err := Encode(entries)
	if err != nil {
		t.Fatal(err)
	}
	p1, err := os.ReadFile("testdata/format1.bin")
	if err != nil {
		t.Fatal(err)
	}
	for _, payload := range [][]byte{p2, p1} {
		want, err := Decode(payload)
		if err != nil {
			t.Fatal(err)
		}
		i := 0
		err = Each(payload, func(v *EventView) error {
			w := want[i].Event
			if v.Offset != want[i].Offset || string(v.ID) != w.ID || v.Type != w.Type || !v.Time.Equal(w.Time) || v.ClockSkew != w.ClockSkew {
				t.Errorf("format %d entry %d: %d %q %q %v, want %+v", payload[0], i, v.Offset, v.ID, v.Type, v.Time, want[i])
			}
			for k, x := range w.Fields {
				if got := v.Value(k); !reflect.DeepEqual(got, x) {
					t.Errorf("format %d entry %d: Value(%q) = %#v, want %#v", payload[0], i, k, got, x)
				}
				s, _ := x.(string)
				if got := v.Str(k); got != s {
					t.Errorf("format %d entry %d: Str(%q) = %q, want %q", payload[0], i, k, got, s)
				}
				n, ok := manifest.Integer(x)
				if got, gotOK := v.Integer(k); got != n || gotOK != ok {
					t.Errorf("format %d entry %d: Integer(%q) = %d, %v, want %d, %v", payload[0], i, k, got, gotOK, n, ok)
				}
			}
			if _, ok := v.Integer("absent"); v.Value("absent") != nil || v.Str("absent") != "" || ok {
				t.Errorf("format %d entry %d: a field that is not there", payload[0], i)
			}
			i++
			return nil
		})
		if err != nil || i != len(want) {
			t.Fatalf("format %d: %d entries visited, %v", payload[0], i, err)
		}
	}
}

func TestEachStopsAtVisitError(t *testing.T) {
	payload, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	n := 0
	if err := Each(payload, func(*EventView) error { n++; return stop }); err != stop || n != 1 {
		t.Errorf("Each returned %v after %d visits, want the visit's error after 1", err, n)
	}
}
