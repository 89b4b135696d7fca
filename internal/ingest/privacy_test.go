package ingest_test

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provisionhq/provision/internal/ingest/ingesttest"
)

// TestClientAddressIsNeverKept sends from many addresses, over every path
// (accepted, rejected, refused, resent), then looks for the addresses in
// every file of the store, in the logs and in the metrics. It must find the
// derived countries and no address, and no installation id outside the
// store.
func TestClientAddressIsNeverKept(t *testing.T) {
	e := newEnv(t)
	var addrs []netip.Addr
	for i := 1; i <= 20; i++ {
		addrs = append(addrs, netip.AddrFrom4([4]byte{127, 0, 1, byte(100 + i)}), netip.AddrFrom4([4]byte{127, 0, 2, byte(100 + i)}))
	}
	addrs = append(addrs, netip.MustParseAddr("2001:db8::beef"), netip.MustParseAddr("127.0.9.77")) // the last is not in the database
	var installations []string
	for i, a := range addrs {
		b := e.batch(8)
		b.Events[1].Fields["user.email"] = "x@example.com" // one rejection each
		installations = append(installations, b.InstallationID)
		body := ingesttest.Gzip(ingesttest.JSON(b))
		for _, from := range []string{a.String(), "10.9.9.9, " + a.String()} {
			if r := e.post(body, "gzip", xff, from); r.status != 200 {
				t.Fatalf("%d: %d %s", i, r.status, r.body)
			}
		}
		// Refused paths see the address too.
		if r := e.post([]byte("not json"), "", xff, a.String()); r.status != 400 {
			t.Fatalf("bad body answered %d", r.status)
		}
		if r := e.post(body[:len(body)/2], "gzip", xff, a.String()); r.status != 400 {
			t.Fatalf("truncated body answered %d", r.status)
		}
	}

	countries := map[string]int{}
	for _, rec := range e.records() {
		countries[rec.Country]++
	}
	if countries["DE"] == 0 || countries["BR"] == 0 || countries["GB"] == 0 {
		t.Fatalf("locations not derived: %v", countries)
	}
	metrics := e.get("/metrics").body
	logs := e.logs.String()
	if !strings.Contains(logs, "submission stored") || !strings.Contains(logs, "submission refused") {
		t.Fatalf("logs lack the submission lines; the test would prove nothing:\n%s", logs)
	}

	// The store while running (WAL and shared memory present), then after
	// a clean close (folded into the main file).
	files := func() map[string][]byte {
		out := map[string][]byte{}
		entries, _ := filepath.Glob(e.dbPath + "*")
		for _, f := range entries {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			out[filepath.Base(f)] = b
		}
		return out
	}
	running := files()
	if len(running) < 2 {
		t.Fatalf("expected the database and its WAL, found %d files", len(running))
	}
	e.store.Close()
	closed := files()

	look := func(where string, data []byte, needles ...[]byte) {
		for _, n := range needles {
			if bytes.Contains(data, n) {
				t.Errorf("%s contains %q", where, n)
			}
		}
	}
	for _, a := range addrs {
		text := []byte(a.String())
		// The 16-byte form too; four bytes would match unrelated integers
		// in the pages by chance.
		raw := text
		if a.Is6() {
			raw = a.AsSlice()
		}
		for name, data := range running {
			look("store file "+name+" (running)", data, text, raw)
		}
		for name, data := range closed {
			look("store file "+name+" (closed)", data, text, raw)
		}
		look("logs", []byte(logs), text)
		look("metrics", metrics, text)
	}
	look("logs", []byte(logs), []byte("10.9.9.9"))
	look("metrics", metrics, []byte("10.9.9.9"))
	for _, id := range installations {
		look("logs", []byte(logs), []byte(id))
		look("metrics", metrics, []byte(id))
	}
	// The installation id is in the store: it is raw, retention-bound
	// data. The check above would be vacuous if the search could not find
	// what is there.
	found := false
	for _, data := range closed {
		found = found || bytes.Contains(data, []byte(installations[0]))
	}
	if !found {
		t.Error("search cannot find the installation id in the store; it proves nothing")
	}
}
