package natslog

import (
	"testing"
	"time"

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
		sub, err := decode(body)
		if err != nil {
			return
		}
		// Whatever decodes encodes again and decodes to the same batch.
		again, err := encode(sub)
		if err != nil {
			t.Fatalf("decoded submission does not encode: %v", err)
		}
		sub2, err := decode(again)
		if err != nil || sub2.BatchID != sub.BatchID || len(sub2.Events) != len(sub.Events) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
