package ingest

import "github.com/provisionhq/provision"

// DecodeBatch decodes a submission body with the decoder the server uses,
// so that bench/ingest's decode-only baseline pays for the same decoding
// and its ratio measures what validation, durability and storage cost.
// bad maps the index of each event that did not decode to why.
func DecodeBatch(body []byte, maxEvents int) (provision.Batch, map[int]string, error) {
	b, bad, err := decodeBatch(body, maxEvents)
	if err != nil {
		return b, bad, err
	}
	return b, bad, nil
}
