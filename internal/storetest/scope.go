package storetest

import (
	"testing"
)

// testIDsScopedToInstallation: batch ids are idempotence keys of one
// installation. Another installation's batch with the same id is another
// batch: stored, with its own events (even with the same event ids), and
// answered with its own answer, never the first installation's.
//
// An event id is stored once per installation because its batch is: the
// agent resends a batch byte for byte under its id, ingest refuses an id
// repeated inside a batch, and a resend of the batch id stores nothing.
func testIDsScopedToInstallation(t *testing.T, s Log) {
	first := Submission("b1", "e", 3)
	mustAppend(t, s, first)

	other := Submission("b1", "e", 2)
	other.InstallationID = "7a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
	other.Response = []byte(`{"batch_id":"b1","accepted":2,"rejected":[],"duplicate":false}`)
	resp := mustAppend(t, s, other)
	if string(resp) != string(other.Response) {
		t.Errorf("other installation's answer = %s, want its own %s", resp, other.Response)
	}
	// Its resend is a duplicate of its own batch, answered with its own answer.
	again := Submission("b1", "e", 2)
	again.InstallationID = other.InstallationID
	resp, dup, err := s.Append(ctx(t), again)
	if err != nil || !dup || string(resp) != string(other.Response) {
		t.Errorf("resend by the other installation = %s, %v, %v; want its own answer as a duplicate", resp, dup, err)
	}

	recs := readAll(t, s)
	if len(recs) != 5 {
		t.Fatalf("read %d records, want 3 + 2", len(recs))
	}
	per := map[string]int{}
	for _, r := range recs {
		per[r.InstallationID]++
	}
	if per[first.InstallationID] != 3 || per[other.InstallationID] != 2 {
		t.Errorf("records per installation = %v", per)
	}
}
