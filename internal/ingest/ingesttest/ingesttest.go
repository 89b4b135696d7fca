// Package ingesttest builds realistic submissions for the ingest tests, the
// crash test and the benchmark harness: valid batches of the reference
// manifest's event types, and their gzip and zstd encodings.
package ingesttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/provisionhq/provision"
)

// InstallationID returns a random version 4 UUID in canonical form.
func InstallationID(r *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Batch returns a valid batch of n events of the common types, stamped
// around now. Event ids are batchID-i, so they are unique when batch ids are.
func Batch(r *rand.Rand, batchID string, n int, now time.Time) provision.Batch {
	b := provision.Batch{
		ID:              batchID,
		InstallationID:  InstallationID(r),
		Region:          provision.RegionEU,
		ManifestVersion: "2026.11.1",
		SentAt:          now,
		Events:          make([]provision.Event, n),
	}
	versions := []string{"5.14.0.1234", "5.14.1.77", "5.15.0.12"}
	oses := []string{"11 23H2", "10 22H2", "14.5", "12 (bookworm)"}
	for i := range n {
		ev := provision.Event{
			ID:   fmt.Sprintf("%s-%d", batchID, i),
			Time: now.Add(-time.Duration(r.IntN(3600)) * time.Second).Truncate(time.Millisecond),
		}
		switch i % 4 {
		case 0:
			ev.Type = "task"
			ev.Fields = map[string]any{
				"task.type":        []string{"install", "upgrade", "update"}[r.IntN(3)],
				"task.status":      []string{"success", "success", "failure"}[r.IntN(3)],
				"task.duration":    json.Number(fmt.Sprint(r.IntN(600000))),
				"os.type":          "windows",
				"os.version":       oses[r.IntN(len(oses))],
				"software.version": versions[r.IntN(len(versions))],
			}
		case 1:
			ev.Type = "ui_error"
			ev.Fields = map[string]any{
				"error.type":       "connection_failed",
				"error.code":       fmt.Sprintf("0x%08x", r.Uint32()),
				"event.count":      json.Number(fmt.Sprint(1 + r.IntN(20))),
				"software.version": versions[r.IntN(len(versions))],
				"ui.control_id":    "connect_button",
			}
		case 2:
			ev.Type = "software"
			ev.Fields = map[string]any{
				"software.type":         "vpn",
				"software.name":         "Secure Connection",
				"software.version":      versions[r.IntN(len(versions))],
				"software.edition":      "premium",
				"software.localization": "en-GB",
			}
		case 3:
			ev.Type = "user_count"
			ev.Fields = map[string]any{
				"software.name":      "Secure Connection",
				"software.version":   versions[r.IntN(len(versions))],
				"os.version":         oses[r.IntN(len(oses))],
				"os.update_packages": []any{"KB5034441", "KB5034763", fmt.Sprintf("KB50%05d", r.IntN(100000))},
			}
		}
		b.Events[i] = ev
	}
	return b
}

// JSON encodes the batch as the agent does.
func JSON(b provision.Batch) []byte {
	out, err := json.Marshal(b)
	if err != nil {
		panic(err)
	}
	return out
}

// Gzip compresses data.
func Gzip(data []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(data)
	w.Close()
	return buf.Bytes()
}

// Zstd compresses data.
func Zstd(data []byte) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		panic(err)
	}
	defer enc.Close()
	return enc.EncodeAll(data, nil)
}
