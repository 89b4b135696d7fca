package sqlite_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/sqlite"
	"github.com/provisionhq/provision/internal/storetest"
)

// After an erasure, no file of the data dir holds the erased installation's
// bytes: not its id, not its field values, not the stored answers of its
// batches, not its compressed payloads — neither in free pages, nor in the
// free space of pages it shared with another installation, nor in WAL
// frames written before the delete. Checked while the store is still open
// (the erasure's own checkpoint) and again after a clean stop.
func TestErasureLeavesNoBytes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := sqlite.Open(ctx, filepath.Join(dir, "provision.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	const erased = "c4a7a11e-5eed-4bad-8c0d-ca7a21e5f00d"
	canaries := []string{erased, "canary-answer-3b0e1d", "canary-software-91ac7f", "canary-os-5d22e0"}
	for i := range 6 {
		sub := storetest.Submission(fmt.Sprint("b", i), fmt.Sprint("e", i), 40)
		if i%2 == 0 {
			// Interleaved with another installation's batches, so the
			// erased rows share pages with rows that stay.
			sub.InstallationID = erased
			sub.Response = []byte(`{"batch_id":"b","rejected":[{"message":"canary-answer-3b0e1d"}]}`)
			for j := range sub.Events {
				sub.Events[j].Fields["software.version"] = fmt.Sprintf("canary-software-91ac7f-%d", j)
				sub.Events[j].Fields["os.version"] = "canary-os-5d22e0"
			}
		}
		if _, _, err := s.Append(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	// The compressed payloads hide field values from a plain search, so
	// the payloads' own bytes are canaries too.
	rows, err := s.DB().QueryContext(ctx, `SELECT payload FROM log_batches WHERE installation_id = ?`, erased)
	if err != nil {
		t.Fatal(err)
	}
	var payloads [][]byte
	for rows.Next() {
		var p []byte
		if err := rows.Scan(&p); err != nil {
			t.Fatal(err)
		}
		payloads = append(payloads, p[1:min(len(p), 65)])
	}
	rows.Close()
	if len(payloads) != 3 {
		t.Fatalf("%d payloads of the erased installation, want 3", len(payloads))
	}
	needles := func() [][]byte {
		out := payloads
		for _, c := range canaries {
			out = append(out, []byte(c))
		}
		return out
	}()
	// The search finds them before the erasure.
	if found := search(t, dir, [][]byte{[]byte(erased), []byte("canary-answer-3b0e1d"), payloads[0]}); len(found) != 3 {
		t.Fatalf("before the erasure the search finds only %q", found)
	}

	svc, err := privacy.New(privacy.Options{Store: sqlite.NewPrivacyStore(s.DB()), Manifest: manifest.Reference()})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := svc.Erase(ctx, erased, "", privacy.SourceOperator)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Status != privacy.StatusComplete {
		t.Fatalf("receipt %+v", rec)
	}
	if found := search(t, dir, needles); len(found) != 0 {
		t.Errorf("with the store open, the data dir still holds %q", found)
	}
	if n := len(readAllRecords(t, s)); n != 120 {
		t.Errorf("%d records left, want the other installation's 120", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if found := search(t, dir, needles); len(found) != 0 {
		t.Errorf("after a clean stop, the data dir still holds %q", found)
	}
}

// search returns the needles found in any file of dir.
func search(t *testing.T, dir string, needles [][]byte) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, n := range needles {
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, n) {
				found = append(found, fmt.Sprintf("%s in %s", n, e.Name()))
				break
			}
		}
	}
	return found
}

func readAllRecords(t *testing.T, s *sqlite.Store) []any {
	t.Helper()
	var out []any
	var after int64
	for {
		recs, err := s.Read(context.Background(), after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for range recs {
			out = append(out, nil)
		}
		after = recs[len(recs)-1].Seq
	}
}

// The database and its companions are readable by their owner only.
func TestFilesArePrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "provision.db")
	// A file an older version left with wider permissions is narrowed.
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := open(t, path)
	defer s.Close()
	if _, _, err := s.Append(t.Context(), storetest.Submission("b1", "e", 1)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"provision.db", "provision.db-wal", "provision.db-shm"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s has mode %o, want 600", name, perm)
		}
	}
}
