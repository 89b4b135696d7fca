package ingest

import (
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/manifest"
)

// DecodeBatch decodes a submission body with the strict decoder the server
// uses, validating each event against m as the server does, so that
// bench/ingest's decode-only baseline pays for the same decoding and its
// ratio measures what durability and storage cost. The batch holds the
// accepted events only.
func DecodeBatch(body []byte, m *manifest.Manifest, l Limits, now time.Time) (provision.Batch, error) {
	res := &reservation{a: newAdmission(l)}
	defer res.free()
	b, err := decodeBatch(body, &decodeContext{limits: &l, manifest: m, now: now, res: res})
	if err != nil {
		return provision.Batch{}, err
	}
	return b.Batch, nil
}
