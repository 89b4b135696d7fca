package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/provisionhq/provision/agent"
	"github.com/provisionhq/provision/internal/wire"
	"github.com/provisionhq/provision/internal/wire/wiretest"
)

// agentRun runs `provision agent --state DIR ARGS...` and fails on an
// unexpected exit code.
func agentRun(t *testing.T, state string, want int, args ...string) string {
	t.Helper()
	code, out, errOut := runCmd(t, "", append([]string{"agent", "--state", state}, args...)...)
	if code != want {
		t.Fatalf("agent %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, code, want, out, errOut)
	}
	return out
}

// agentServer is what the agent commands upload to in this test: the
// real ingest handler on an in-memory log, over TLS on 127.0.0.1.
func agentServer(t *testing.T) (url, caFile string, batches func() int, deletions func() []wire.DeletionRequest) {
	srv := wiretest.New(t, wiretest.Options{})
	return srv.URL, srv.CAFile(t), func() int { return len(srv.Batches()) }, srv.Deletions
}

// exerciseAgent runs every agent command up to and including sent against
// the server, checking each step, and returns the state dir and the
// installation id.
func exerciseAgent(t *testing.T, url string, flushArgs ...string) (state, installationID string) {
	t.Helper()
	state = filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	config := "software:\n  type: vpn\n  name: Secure Connection\n  version: 5.14.0.1234\n  edition: free\n  localization: en-GB\nlicense_provider_site: https://shop.example.com/cart?id=9\n"
	if err := os.WriteFile(filepath.Join(state, "agent.yaml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}

	// Before consent nothing is recorded.
	if code, _, _ := runCmd(t, "", "agent", "--state", state, "record", "error", "--type", "crash", "--code", "E1"); code != exitError {
		t.Fatalf("record before consent: exit %d", code)
	}
	out := agentRun(t, state, exitOK, "consent", "accept", "--region", "eu")
	if !strings.Contains(out, "installation id") {
		t.Fatalf("accept: %s", out)
	}
	var status agent.Consent
	if err := json.Unmarshal([]byte(agentRun(t, state, exitOK, "consent", "status", "--json")), &status); err != nil || !status.Accepted {
		t.Fatalf("status: %+v, %v", status, err)
	}

	agentRun(t, state, exitOK, "record", "error", "--type", "connection_failed", "--code", "E42", "--control", "connect")
	agentRun(t, state, exitOK, "record", "error", "--type", "connection_failed", "--code", "E42", "--control", "connect")
	// Recording a task and running one name it with the same flags, and
	// both need its type.
	for _, args := range [][]string{{"record", "task", "--status", "success"}, {"run-task", "--", "sh", "-c", "exit 0"}} {
		if code, _, errOut := runCmd(t, "", append([]string{"agent", "--state", state}, args...)...); code != exitError || !strings.Contains(errOut, `"type" not set`) {
			t.Fatalf("%v without --type: exit %d\n%s", args, code, errOut)
		}
	}
	agentRun(t, state, exitOK, "record", "task", "--type", "install", "--status", "success", "--duration", "12s")
	agentRun(t, state, exitOK, "run-task", "--type", "upgrade", "--campaign", "c7", "--", "sh", "-c", "exit 0")
	agentRun(t, state, exitFinding, "run-task", "--type", "remove", "--", "sh", "-c", "exit 5")
	scan := agentRun(t, state, exitOK, "scan", "tls", strings.TrimPrefix(url, "https://"))
	if !strings.Contains(scan, "recorded") {
		t.Fatalf("scan tls: %s", scan)
	}
	notPE := filepath.Join(t.TempDir(), "plain.txt")
	_ = os.WriteFile(notPE, []byte("text"), 0o600)
	if out := agentRun(t, state, exitOK, "scan", "file", filepath.Dir(notPE)); !strings.Contains(out, "1 not PE") {
		t.Fatalf("scan file: %s", out)
	}

	var preview agent.Preview
	if err := json.Unmarshal([]byte(agentRun(t, state, exitOK, "collect", "--dry-run")), &preview); err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, ev := range preview.Batches[0].Events {
		types[ev.Type]++
	}
	want := map[string]int{"ui_error": 1, "task": 3, "tls_connection": 1, "software": 1, "os": 1, "license": 1, "user_count": 1}
	for k, v := range want {
		if types[k] != v {
			t.Errorf("dry run has %d %s events, want %d (all: %v)", types[k], k, v, types)
		}
	}
	// The dry run changed nothing: a real collection still queues all four.
	if out := agentRun(t, state, exitOK, "collect"); !strings.Contains(out, "queued: software, os, license, user_count") {
		t.Fatalf("collect: %s", out)
	}

	out = agentRun(t, state, exitOK, append([]string{"flush", "--server", url}, flushArgs...)...)
	if !strings.Contains(out, "9 events accepted, 0 rejected") {
		t.Fatalf("flush: %s", out)
	}
	out = agentRun(t, state, exitOK, "sent", "--last", "1")
	for _, s := range []string{"accepted", "ui_error", "event.count", "license.provider_site", `"https://shop.example.com"`} {
		if !strings.Contains(out, s) {
			t.Errorf("sent output lacks %q:\n%s", s, out)
		}
	}
	var sent []agent.SentEntry
	if err := json.Unmarshal([]byte(agentRun(t, state, exitOK, "sent", "--json")), &sent); err != nil || len(sent) != 1 || len(sent[0].Batch) == 0 {
		t.Fatalf("sent --json: %+v, %v", sent, err)
	}
	var st agent.Status
	if err := json.Unmarshal([]byte(agentRun(t, state, exitOK, "status", "--json")), &st); err != nil || st.Events != 0 || st.Inflight {
		t.Fatalf("status after flush: %+v, %v", st, err)
	}
	return state, status.InstallationID
}

func TestAgentCommandsEndToEnd(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("run-task uses sh")
	}
	url, ca, batches, deletions := agentServer(t)
	state, id := exerciseAgent(t, url, "--ca", ca)
	if batches() != 1 {
		t.Fatalf("server has %d batches", batches())
	}

	agentRun(t, state, exitOK, "consent", "withdraw")
	agentRun(t, state, exitOK, "flush", "--server", url, "--ca", ca)
	if d := deletions(); len(d) != 1 || d[0].InstallationID != id {
		t.Fatalf("deletions = %v", d)
	}
	if out := agentRun(t, state, exitOK, "sent"); !strings.Contains(out, "deletion request") {
		t.Fatalf("sent after withdrawal: %s", out)
	}
	if code, _, _ := runCmd(t, "", "agent", "--state", state, "flush"); code != exitError {
		t.Fatal("flush without a server did not fail")
	}
	if code, _, _ := runCmd(t, "", "agent", "--state", state, "consent", "accept", "--region", "nowhere"); code != exitError {
		t.Fatal("unknown region accepted")
	}
}
