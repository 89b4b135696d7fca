package natslog

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/provisionhq/provision"
)

func FuzzDecode(f *testing.F) {
	good, err := encode(&provision.Submission{
		BatchID: "b", InstallationID: "i", Region: "eu", ReceivedAt: time.Unix(1, 0),
		Events:   []provision.Event{{ID: "e", Type: "os", Fields: map[string]any{"os.name": "linux"}}},
		Response: []byte(`{}`),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte("not zstd"))
	f.Fuzz(func(t *testing.T, body []byte) {
		sub, enc, err := decode(body)
		if err != nil {
			return
		}
		es, err := entries(sub, enc)
		if err != nil {
			return // a damaged payload is found when the events are read
		}
		// Whatever decodes encodes again and decodes to the same batch.
		sub.Events = make([]provision.Event, len(es))
		for i := range es {
			sub.Events[i] = es[i].Event
		}
		again, err := encode(sub)
		if err != nil {
			t.Fatalf("decoded submission does not encode: %v", err)
		}
		sub2, enc2, err := decode(again)
		if err != nil || sub2.BatchID != sub.BatchID {
			t.Fatalf("round trip: %v", err)
		}
		if es2, err := entries(sub2, enc2); err != nil || len(es2) != len(es) {
			t.Fatalf("round trip of the events: %d, %v; want %d", len(es2), err, len(es))
		}
	})
}

// Messages earlier versions wrote (format 1: JSON in zstd) still decode, so
// a stream that holds them drains after an upgrade.
func TestDecodesFormatOne(t *testing.T) {
	raw, err := json.Marshal(message{
		V: formatVersion, BatchID: "b", InstallationID: "i", Region: "eu", ReceivedAt: time.Unix(1, 0),
		Events:   []provision.Event{{ID: "e", Type: "os", Time: time.Unix(2, 0), Fields: map[string]any{"os.name": "linux"}}},
		Response: []byte(`{}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	sub, encoded, err := decode(enc.EncodeAll(raw, nil))
	if err != nil || encoded != nil || len(sub.Events) != 1 || sub.Events[0].Fields["os.name"] != "linux" {
		t.Fatalf("format 1 = %+v, %v, %v", sub, encoded, err)
	}
}
