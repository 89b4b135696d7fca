package batchcodec

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"

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

func zstdFrame(b []byte) []byte {
	e, err := zstd.NewWriter(nil)
	if err != nil {
		panic(err)
	}
	return e.EncodeAll(b, nil)
}

func TestDecodeRefusesDamage(t *testing.T) {
	payload, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string][]byte{
		"empty":              nil,
		"format":             append([]byte{9}, payload[1:]...),
		"truncated":          payload[:len(payload)/2],
		"not s2":             {format, 1, 2, 3},
		"not zstd":           {formatJSONFields, 1, 2, 3},
		"huge claim":         {format, 0x80, 0x80, 0x80, 0x80, 0x01, 0},
		"trailing":           append([]byte{format}, s2.Encode(nil, []byte{1, 0, 0, 0, 0, 0, 0, 7})...),
		"trailing, format 1": append([]byte{formatJSONFields}, zstdFrame([]byte{1, 0, 0, 0, 0, 0, 2, '{', '}', 7})...),
		"fields count lie":   append([]byte{format}, s2.Encode(nil, []byte{1, 0, 0, 0, 0, 0, 0x7f, 1, 'k', tagNull})...),
		"unknown tag":        append([]byte{format}, s2.Encode(nil, []byte{1, 0, 0, 0, 0, 0, 1, 1, 'k', 99})...),
		"bad number":         append([]byte{format}, s2.Encode(nil, []byte{1, 0, 0, 0, 0, 0, 1, 1, 'k', tagNumber, 2, '1', 'x'})...),
		"list too long":      append([]byte{format}, s2.Encode(nil, []byte{1, 0, 0, 0, 0, 0, 1, 1, 'k', tagList, 0x7f, tagNull})...),
		"bad JSON":           append([]byte{format}, s2.Encode(nil, []byte{1, 0, 0, 0, 0, 0, 1, 1, 'k', tagJSON, 2, '{', '1'})...),
		"lists too deep":     append([]byte{format}, s2.Encode(nil, append([]byte{1, 0, 0, 0, 0, 0, 1, 1, 'k'}, append(bytes.Repeat([]byte{tagList, 1}, maxDepth+1), tagNull)...))...),
		"count lie":          append([]byte{format}, s2.Encode(nil, []byte{0xff, 0xff, 0xff, 0x0f})...),
	} {
		if _, err := Decode(p); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: err = %v, want ErrCorrupt", name, err)
		}
	}
}

// TestFormat1 reads a payload written before fields took the binary
// layout.
func TestFormat1(t *testing.T) {
	payload, err := os.ReadFile("testdata/format1.bin")
	if err != nil {
		t.Fatal(err)
	}
	if payload[0] != formatJSONFields {
		t.Fatalf("fixture has format %d", payload[0])
	}
	out, err := Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	if want := sample(); !reflect.DeepEqual(out, want) {
		t.Errorf("format 1:\n got %+v\nwant %+v", out, want)
	}
}

// TestFieldsReadBackAsJSON checks that every kind of value reads back as
// it would through JSON, the layout of format 1 and of what ingest decodes.
func TestFieldsReadBackAsJSON(t *testing.T) {
	deep := any("leaf")
	for range maxDepth + 2 {
		deep = []any{deep}
	}
	for _, fields := range []map[string]any{
		nil,
		{"a": "plain", "b": json.Number("12"), "c": true, "d": nil, "e": []any{"x", json.Number("-3.5e2"), false}},
		{"esc": "quote\" back\\ nl\n <html>&amp; \u2028 ünï €", "bad": "in\xffval\xc3id", "in\xfekey": 1},
		{"list": []string{"KB1", "KB2"}, "int": int64(-7), "i": 3, "f": 1.5, "nested": map[string]any{"z": 1}},
		{"nil list": []any(nil), "nil strings": []string(nil), "nil map": map[string]any(nil), "empty": []any{}, "zero": json.Number("")},
		{"deep": deep},
		{"a\xff": 1, "a\ufffd": 2, "\xff": "\xff\xfe"},
	} {
		js, err := json.Marshal(fields)
		if err != nil {
			t.Fatal(err)
		}
		if string(js) == "null" {
			js = []byte("{}")
		}
		want, err := DecodeFields(bytes.ReplaceAll(js, []byte(`"zero":""`), []byte(`"zero":0`)))
		if err != nil {
			t.Fatal(err)
		}
		payload, err := Encode([]Entry{{Event: provision.Event{ID: "e", Type: "t", Fields: fields}}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(payload)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[0].Event.Fields, want) {
			t.Errorf("fields %s:\n got %#v\nwant %#v", js, got[0].Event.Fields, want)
		}
	}
	if _, err := Encode([]Entry{{Event: provision.Event{Fields: map[string]any{"n": json.Number("1; DROP")}}}}); err == nil {
		t.Error("invalid json.Number encoded")
	}
	if _, err := Encode([]Entry{{Event: provision.Event{Fields: map[string]any{"c": make(chan int)}}}}); err == nil {
		t.Error("a value JSON cannot hold encoded")
	}
}

func FuzzDecode(f *testing.F) {
	payload, err := Encode(sample())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(payload)
	if old, err := os.ReadFile("testdata/format1.bin"); err == nil {
		f.Add(old)
	}
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

// A corrected event keeps its clock skew through the stored form; events
// without a correction write none.
func TestClockSkewRoundTrip(t *testing.T) {
	plain, err := Encode(sample())
	if err != nil {
		t.Fatal(err)
	}
	if plain[0] != format {
		t.Errorf("a batch without clock skew is written as format %d, want %d", plain[0], format)
	}
	for _, e := range mustDecode(t, plain) {
		if e.Event.ClockSkew != 0 {
			t.Errorf("event %s decoded with a clock skew of %s, none was written", e.Event.ID, e.Event.ClockSkew)
		}
	}
	in := sample()
	in[0].Event.ClockSkew = 30 * time.Hour
	in[1].Event.ClockSkew = -31 * 24 * time.Hour
	payload, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	if payload[0] != format {
		t.Errorf("a batch with clock skew is written as format %d, want %d", payload[0], format)
	}
	out, err := Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
}

func mustDecode(t *testing.T, payload []byte) []Entry {
	t.Helper()
	out, err := Decode(payload)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
