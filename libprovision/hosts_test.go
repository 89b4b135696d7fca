package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// delivered is what a host says it sent: its installation id and the ids
// of the events in its one batch.
type delivered struct {
	installation string
	batch        string
	events       []string
}

// fromSentLog reads a C or C++ host's output: its consent and sent log.
func fromSentLog(t *testing.T, out []byte) delivered {
	t.Helper()
	h := parseHostOutput(out)
	var consent struct {
		InstallationID string `json:"installation_id"`
	}
	h.decode(t, "consent", &consent)
	var sent []sentEntry
	h.decode(t, "sent", &sent)
	if len(sent) != 1 || sent[0].Status != "accepted" || sent[0].Accepted != 2 {
		t.Fatalf("sent log: %+v", sent)
	}
	d := delivered{installation: consent.InstallationID, batch: sent[0].BatchID}
	for _, e := range sent[0].Batch.Events {
		d.events = append(d.events, e.ID)
	}
	return d
}

// TestHostsDeliverToServer runs each host — the C example linked against
// the shared and the static library, the C++ example through its RAII
// wrapper, and the Python binding's tests — against a real `provision
// serve` over TLS with the server's certificate as the CA file. Each
// accepts consent, records one error and one task and flushes; the server
// must then hold exactly those two events for that installation.
func TestHostsDeliverToServer(t *testing.T) {
	needHostTools(t, "g++")
	srv := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	hosts := map[string]delivered{}

	t.Run("c-shared", func(t *testing.T) {
		bin := compile(t, "gcc", "example-c", append([]string{"-std=c11", "../examples/c/main.c"}, linkShared(t)...)...)
		hosts["c-shared"] = fromSentLog(t, run(t, ctx, bin, "demo", t.TempDir(), srv.URL, srv.CA))
	})
	t.Run("c-archive", func(t *testing.T) {
		bin := compile(t, "gcc", "example-c-static", "-std=c11", "../examples/c/main.c", staticLibrary(t), "-lpthread", "-lm")
		hosts["c-archive"] = fromSentLog(t, run(t, ctx, bin, "demo", t.TempDir(), srv.URL, srv.CA))
	})
	t.Run("c++", func(t *testing.T) {
		bin := compile(t, "g++", "example-cpp", append([]string{"-std=c++17", "../examples/cpp/main.cpp"}, linkShared(t)...)...)
		out := run(t, ctx, bin, t.TempDir(), srv.URL, srv.CA)
		before := parseHostOutput(out)["before_consent"]
		if !slices.Equal(before, []string{"no_consent"}) {
			t.Errorf("before consent the C++ host saw %v, want no_consent", before)
		}
		hosts["c++"] = fromSentLog(t, out)
	})
	t.Run("python", func(t *testing.T) {
		python, err := exec.LookPath("python3")
		if err != nil {
			t.Skip("python3 is not installed")
		}
		outFile := filepath.Join(t.TempDir(), "delivered.json")
		cmd := exec.CommandContext(ctx, python, "-m", "unittest", "-v", "test_provision")
		cmd.Dir = "../bindings/python"
		cmd.Env = append(os.Environ(),
			"PROVISION_LIBRARY="+sharedLibrary(t),
			"PROVISION_TEST_SERVER="+srv.URL,
			"PROVISION_TEST_CA="+srv.CA,
			"PROVISION_TEST_STATE="+t.TempDir(),
			"PROVISION_TEST_OUT="+outFile,
			"PYTHONDONTWRITEBYTECODE=1",
		)
		out, err := cmd.CombinedOutput()
		t.Logf("python3 -m unittest test_provision:\n%s", out)
		if err != nil {
			t.Fatalf("the Python tests failed: %v", err)
		}
		var d struct {
			InstallationID string   `json:"installation_id"`
			EventIDs       []string `json:"event_ids"`
		}
		b, err := os.ReadFile(outFile)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		hosts["python"] = delivered{installation: d.InstallationID, events: d.EventIDs}
	})

	for name, d := range hosts {
		got := srv.export(t, d.installation)
		if d.batch != "" && !slices.Equal(got.Batches, []string{d.batch}) {
			t.Errorf("%s: the server holds batches %v, the host sent %s", name, got.Batches, d.batch)
		}
		if len(got.Batches) != 1 {
			t.Errorf("%s: the server holds %d submissions, want 1", name, len(got.Batches))
		}
		var ids []string
		for id := range got.Events {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		slices.Sort(d.events)
		if !slices.Equal(ids, d.events) {
			t.Errorf("%s: the server holds events %v, the host sent %v", name, ids, d.events)
		}
		for id, typ := range got.Events {
			f := got.Fields[id]
			switch typ {
			case "ui_error":
				if f["error.type"] != `"connection_failed"` || f["error.code"] != `"E42"` {
					t.Errorf("%s: stored error %v", name, f)
				}
			case "task":
				if f["task.type"] != `"upgrade"` || f["task.status"] != `"success"` || f["task.duration"] != "1234" {
					t.Errorf("%s: stored task %v", name, f)
				}
			default:
				t.Errorf("%s: the server holds a %s event the host did not record", name, typ)
			}
		}
	}
	for _, name := range []string{"c-shared", "c-archive", "c++"} {
		if _, ok := hosts[name]; !ok && !t.Failed() {
			t.Errorf("the %s host did not run", name)
		}
	}
}
