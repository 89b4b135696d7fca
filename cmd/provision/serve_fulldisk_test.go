//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/ingest/ingesttest"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory, or skips the
// test when this process may not mount. CI runs as root with
// PROVISION_REQUIRE_SERVICES=1, where a refused mount is a failure.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	why := ""
	if os.Geteuid() != 0 {
		why = "mounting a tmpfs needs root"
	} else if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		why = "mount tmpfs refused: " + err.Error()
	}
	if why != "" {
		if os.Getenv("PROVISION_REQUIRE_SERVICES") == "1" && os.Geteuid() == 0 {
			t.Fatal(why)
		}
		t.Skip(why + "; this test fills a small filesystem to make the disk full")
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file until the filesystem has no space left.
func fill(t *testing.T, path string, max int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for written := 0; written <= max; written += len(chunk) {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				// Take the last partial page too.
				for i := 0; i < 16; i++ {
					if _, err := f.Write(chunk[:256]); err != nil {
						return
					}
				}
				return
			}
			t.Fatal(err)
		}
	}
	t.Fatalf("wrote %d bytes to %s without filling it", max, path)
}

// A full disk takes the node out of rotation and refuses uploads with a
// retryable answer; when space returns the node is ready again by itself,
// before any upload, and the refused upload is then stored in full.
func TestServeReadinessHealsAfterFullDisk(t *testing.T) {
	disk := mountTmpfs(t, "8m")
	data := filepath.Join(disk, "data")
	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &lockedBuffer{}, &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--listen", "127.0.0.1:0", "--log-level", "error"},
			func(string) string { return "" }, strings.NewReader(""), out, errOut)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, errOut)
		}
	}()
	addr := waitListening(t, out.String)
	client := pinnedClient(t, data)
	readyz := func() (int, string) {
		t.Helper()
		resp, err := client.Get("https://" + addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	rng := rand.New(rand.NewPCG(16, 5))
	first := ingesttest.Gzip(ingesttest.JSON(ingesttest.Batch(rng, "before-full", 10, time.Now())))
	second := ingesttest.Gzip(ingesttest.JSON(ingesttest.Batch(rng, "while-full", 10, time.Now())))
	if code, body := readyz(); code != 200 {
		t.Fatalf("/readyz before = %d %s", code, body)
	}
	if status, body, err := submit(client, addr, first); err != nil || status != 200 {
		t.Fatalf("submit before = %d %s %v", status, body, err)
	}

	filler := filepath.Join(disk, "filler")
	fill(t, filler, 16<<20)
	// A passing probe is reused for a second; the next one finds the
	// disk full, with no upload needed.
	code, rbody := readyz()
	for deadline := time.Now().Add(10 * time.Second); code == 200 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		code, rbody = readyz()
	}
	if code != 503 || !strings.Contains(rbody, "store not writable") {
		t.Errorf("/readyz with the disk full = %d %s", code, rbody)
	}
	req, _ := http.NewRequest("POST", "https://"+addr+"/v1/submit", bytes.NewReader(second))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), `"unavailable"`) {
		t.Errorf("submit with the disk full = %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// No upload in between: the probe alone brings the node back.
	if code, body := readyz(); code != 200 {
		t.Errorf("/readyz after space returned = %d %s", code, body)
	}
	// The refused batch was not half stored: sent again it is new and
	// taken whole, and the batch from before the full disk is still there.
	status, got, err := submit(client, addr, second)
	if err != nil || status != 200 || !bytes.Contains(got, []byte(`"accepted":10`)) || bytes.Contains(got, []byte(`"duplicate":true`)) {
		t.Errorf("resend after space returned = %d %s %v", status, got, err)
	}
	status, got, err = submit(client, addr, first)
	if err != nil || status != 200 || !bytes.Contains(got, []byte(`"duplicate":true`)) {
		t.Errorf("resend of the batch from before = %d %s %v", status, got, err)
	}
}
