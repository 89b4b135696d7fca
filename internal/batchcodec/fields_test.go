package batchcodec

import (
	"encoding/json"
	"testing"
)

func TestEncodeFieldsMatchesEncodingJSON(t *testing.T) {
	for _, fields := range []map[string]any{
		nil,
		{"a": "plain", "b": json.Number("12"), "c": true, "d": nil, "e": []any{"x", json.Number("-3.5e2"), false}},
		{"esc": "quote\" back\\ nl\n tab\t ctl\x01 <html>&amp; \u2028\u2029 ünï €", "bad": "in\xffvalid"},
		{"list": []string{"KB1", "KB2"}, "int": int64(-7), "i": 3, "f": 1.5, "nested": map[string]any{"z": 1}},
		{"zeta": 1, "alpha": 2, "mid.dle": "x"},
	} {
		want, err := json.Marshal(fields)
		if err != nil {
			t.Fatal(err)
		}
		if fields == nil {
			want = []byte("{}")
		}
		got, err := EncodeFields(fields)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("encodeFields\n got %s\nwant %s", got, want)
		}
	}
	if _, err := EncodeFields(map[string]any{"n": json.Number("1; DROP")}); err == nil {
		t.Error("invalid json.Number encoded")
	}
}

func FuzzEncodeFields(f *testing.F) {
	f.Add("k", "v\u2028<\xff")
	f.Fuzz(func(t *testing.T, k, v string) {
		fields := map[string]any{k: v, "n": []any{v, k}}
		want, _ := json.Marshal(fields)
		got, err := EncodeFields(fields)
		if err != nil || string(got) != string(want) {
			t.Fatalf("got %s, want %s (%v)", got, want, err)
		}
	})
}
