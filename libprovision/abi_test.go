//go:build cgo

package main

import (
	"encoding/json"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// openForTest opens an agent on a temporary state directory and accepts
// the terms, through the exported functions.
func openForTest(tb testing.TB) (agent uint64, free func()) {
	tb.Helper()
	dir := cString(tb.TempDir())
	defer freeCString(dir)
	var h cAgent
	if rc := provision_open(dir, nil, &h, nil); rc != statusOK {
		tb.Fatalf("open: %d", rc)
	}
	eu := cString("eu")
	defer freeCString(eu)
	if rc := provision_consent_accept(h, eu, nil, nil); rc != statusOK {
		tb.Fatalf("accept: %d", rc)
	}
	return uint64(h), func() { provision_close(h, nil) }
}

// TestCloseWhileCallsRun closes an agent while other goroutines record and
// run the uploader: every call returns OK or PROVISION_ERR_CLOSED, none
// crashes, and a call on the stale handle is refused.
func TestCloseWhileCallsRun(t *testing.T) {
	raw, _ := openForTest(t)
	h := cAgent(raw)
	typ, code := cString("connection_failed"), cString("E1")
	defer freeCString(typ)
	defer freeCString(code)
	up := cString(`{"server":"https://127.0.0.1:9","interval_ms":1100,"max_attempts":1}`)
	defer freeCString(up)
	if rc := provision_uploader_start(h, up, nil); rc != statusOK {
		t.Fatalf("uploader start: %d", rc)
	}
	var wg sync.WaitGroup
	var ok, closed atomic.Int64
	for range 8 {
		wg.Go(func() {
			for {
				switch rc := provision_record_error(h, typ, code, nil, nil); rc {
				case statusOK:
					ok.Add(1)
				case statusClosed:
					closed.Add(1)
					return
				default:
					t.Errorf("record during close: %d", rc)
					return
				}
			}
		})
	}
	for ok.Load() < 16 { // let the writers get going
		runtime.Gosched()
	}
	var msg *cChar
	if rc := provision_close(h, &msg); rc != statusOK {
		t.Fatalf("close: %d %s", rc, goStringOf(msg))
	}
	wg.Wait()
	if closed.Load() != 8 {
		t.Fatalf("%d writers saw the close", closed.Load())
	}
	if rc := provision_close(h, &msg); rc != statusClosed || goStringOf(msg) == "" {
		t.Fatalf("second close: %d %q", rc, goStringOf(msg))
	}
	provision_free(msg)
	for _, stale := range []uint64{raw, 0, raw + 1000} {
		if rc := provision_status(cAgent(stale), nil, nil); rc != statusClosed {
			t.Errorf("status on handle %d: %d", stale, rc)
		}
	}
}

// TestStateDirReopensAfterClose: the state survives a close, and the
// directory is free for the next agent.
func TestStateDirReopensAfterClose(t *testing.T) {
	dirPath := t.TempDir()
	dir := cString(dirPath)
	defer freeCString(dir)
	for i := range 2 {
		var h cAgent
		if rc := provision_open(dir, nil, &h, nil); rc != statusOK {
			t.Fatalf("open %d: %d", i, rc)
		}
		var out *cChar
		if rc := provision_consent_status(h, &out, nil); rc != statusOK {
			t.Fatal(rc)
		}
		var c struct{ Accepted bool }
		if err := json.Unmarshal([]byte(goStringOf(out)), &c); err != nil {
			t.Fatal(err)
		}
		provision_free(out)
		if c.Accepted != (i == 1) {
			t.Fatalf("open %d: accepted %v", i, c.Accepted)
		}
		if i == 0 {
			uk := cString("uk")
			provision_consent_accept(h, uk, nil, nil)
			freeCString(uk)
		}
		if rc := provision_close(h, nil); rc != statusOK {
			t.Fatal(rc)
		}
	}
}

// BenchmarkRecordErrorABI is the Go side of recording an error through the
// C ABI: the exported function with C strings, as a host calls it. Each
// call is durable when it returns (one fsync).
func BenchmarkRecordErrorABI(b *testing.B) {
	h, closeAgent := openForTest(b)
	defer closeAgent()
	typ, code, ctl := cString("connection_failed"), cString("E42"), cString("connect_button")
	defer freeCString(typ)
	defer freeCString(code)
	defer freeCString(ctl)
	b.ReportAllocs()
	for b.Loop() {
		if rc := provision_record_error(cAgent(h), typ, code, ctl, nil); rc != statusOK {
			b.Fatal(rc)
		}
	}
}

// BenchmarkStatusABI is a read through the ABI that hands a JSON document
// to the host, which frees it.
func BenchmarkStatusABI(b *testing.B) {
	h, closeAgent := openForTest(b)
	defer closeAgent()
	b.ReportAllocs()
	for b.Loop() {
		var out *cChar
		if rc := provision_status(cAgent(h), &out, nil); rc != statusOK {
			b.Fatal(rc)
		}
		provision_free(out)
	}
}
