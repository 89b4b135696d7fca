package agent

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// filesHolding returns the files under dir whose bytes contain any of the
// needles, with the needle found.
func filesHolding(t *testing.T, dir string, needles ...string) map[string]string {
	t.Helper()
	found := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				found[path] = n
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// After a withdrawal nothing of the withdrawn events stays in any file of
// the state directory — neither what was sent (the sent log) nor what was
// waiting (the outbox), not even in freed pages — and once the server took
// the deletion request, the old installation id is gone too.
func TestWithdrawalLeavesNoBytesOnTheDevice(t *testing.T) {
	srv := newServer(t)
	defer srv.Close()
	dir := t.TempDir()
	ctx := context.Background()
	const sentCanary, waitingCanary = "CANARYSENT4F7Q", "CANARYWAIT9K2Z"
	a := openAgent(t, dir)
	c, err := a.Accept("eu")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.RecordError(ctx, UIError{Type: "crash", Code: sentCanary}); err != nil {
		t.Fatal(err)
	}
	var sl sleeps
	if rep, err := a.Flush(ctx, upload(t, srv, &sl)); err != nil || rep.Accepted == 0 {
		t.Fatalf("flush: %+v %v", rep, err)
	}
	if err := a.RecordError(ctx, UIError{Type: "crash", Code: waitingCanary}); err != nil {
		t.Fatal(err)
	}
	a.Close()
	// The test can fail: before the withdrawal both canaries are on disk.
	if got := filesHolding(t, dir, sentCanary, waitingCanary, c.InstallationID); len(got) == 0 {
		t.Fatal("the canaries were never written: the test checks nothing")
	}

	a = openAgent(t, dir)
	if _, err := a.Withdraw(); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if got := filesHolding(t, dir, sentCanary, waitingCanary); len(got) > 0 {
		t.Fatalf("after withdrawal, files still hold withdrawn bytes: %v", got)
	}

	// The deletion request holds the old id until the server has it.
	a = openAgent(t, dir)
	if rep, err := a.Flush(ctx, upload(t, srv, &sl)); err != nil || rep.Deletions != 1 {
		t.Fatalf("flush of the deletion: %+v %v", rep, err)
	}
	a.Close()
	if got := filesHolding(t, dir, sentCanary, waitingCanary, c.InstallationID); len(got) > 0 {
		t.Fatalf("after the deletion was sent, files still hold: %v", got)
	}
}
