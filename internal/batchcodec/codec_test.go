package batchcodec

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision"
)

func sample() []Entry {
	t0 := time.Date(2026, 11, 28, 10, 30, 0, 123456789, time.UTC)
	return []Entry{
		{Offset: 0, Event: provision.Event{ID: "e-0", Type: "task", Time: t0, Fields: map[string]any{
			"task.type": "install", "task.duration": json.Number("1234"), "list": []any{"a", json.Number("-1.5")}}}},
		{Offset: 2, Event: provision.Event{ID: "e-2", Type: "user_count", Time: t0.AddDate(0, 0, -3),
			Fields: map[string]any{"long": strings.Repeat("ü", 70000)}}},
		{Offset: 5, Event: provision.Event{ID: "e-5", Type: "task", Fields: map[string]any{}}},
	}
}

func TestRoundTrip(t *testing.T) {
	in := sample()
	payload, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
	s := Summarize(in)
	if s.Types != " task user_count " || s.Last != 5 || s.DayMax-s.DayMin < 3 {
		t.Errorf("summary = %+v", s)
	}
}

func TestDecodeRefusesDamage(t *testing.T) {
	payload, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string][]byte{
		"empty":     nil,
		"format":    append([]byte{9}, payload[1:]...),
		"truncated": payload[:len(payload)/2],
		"not zstd":  {format, 1, 2, 3},
		"trailing":  append([]byte{format}, encoder().EncodeAll([]byte{1, 0, 0, 0, 0, 0, 2, '{', '}', 7}, nil)...),
		"count lie": append([]byte{format}, encoder().EncodeAll([]byte{0xff, 0xff, 0xff, 0x0f}, nil)...),
	} {
		if _, err := Decode(p); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	payload, err := Encode(sample())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(payload)
	f.Add([]byte{format})
	f.Fuzz(func(t *testing.T, p []byte) {
		entries, err := Decode(p)
		if err != nil {
			return
		}
		again, err := Encode(entries)
		if err != nil {
			t.Fatalf("re-encode of decoded entries: %v", err)
		}
		if _, err := Decode(again); err != nil {
			t.Fatalf("decode of re-encoded entries: %v", err)
		}
	})
}

// A corrected event keeps its clock skew through the stored form, and only
// a batch that holds one is written in the format that carries it: a log
// of batches that needed no correction stays readable by earlier versions.
func TestClockSkewRoundTrip(t *testing.T) {
	plain, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	if plain[0] != format {
		t.Errorf("a batch without clock skew is written as format %d, want %d", plain[0], format)
	}
	in := sample()
	in[0].Event.ClockSkew = 30 * time.Hour
	in[1].Event.ClockSkew = -31 * 24 * time.Hour
	payload, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if payload[0] != formatClockSkew {
		t.Errorf("a batch with clock skew is written as format %d, want %d", payload[0], formatClockSkew)
	}
	out, err := Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
	// The skew flag in a format 1 payload is damage, not a skew.
	if _, err := Decode(append([]byte{format}, payload[1:]...)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("skew in a format 1 payload: err = %v, want ErrCorrupt", err)
	}
}
