package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/provisionhq/provision/agent"
)

func hasCommand(name string) bool {
	for _, c := range newRootCmd(&env{getenv: func(string) string { return "" }}).Commands() {
		if c.Name() == name {
			return true
		}
	}
	return false
}

var pinRE = regexp.MustCompile(`SPKI SHA-256 pin: ([0-9a-f]{64})`)

// TestAgentAgainstProvisionServe runs every agent command against the real
// server, `provision serve`, over TLS on 127.0.0.1 with its generated
// certificate as the CA and its SPKI pin.
func TestAgentAgainstProvisionServe(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("run-task uses sh")
	}
	if !hasCommand("serve") {
		t.Skip("provision serve is not in this build")
	}
	data := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, func(string) string { return "" }, strings.NewReader(""), out, out)
	}()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("provision serve did not stop")
		}
	}()
	var url, pin string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if m := listeningRE.FindStringSubmatch(out.String()); m != nil {
			url = m[1] + "://" + m[2]
			if p := pinRE.FindStringSubmatch(out.String()); p != nil {
				pin = p[1]
			}
			break
		}
		select {
		case code := <-done:
			t.Fatalf("provision serve exited with %d:\n%s", code, out.String())
		default:
		}
	}
	if url == "" {
		t.Fatalf("provision serve did not say where it listens:\n%s", out.String())
	}
	ca := filepath.Join(data, "server.crt")
	flushArgs := []string{"--ca", ca}
	if pin != "" {
		flushArgs = append(flushArgs, "--pin", pin)
	}
	state, _ := exerciseAgent(t, url, flushArgs...)

	// Withdrawal: the outbox is emptied and a deletion request is queued;
	// it leaves when the server takes it and is never lost before.
	agentRun(t, state, exitOK, "consent", "withdraw")
	code, _, _ := runCmd(t, "", append([]string{"agent", "--state", state, "flush", "--server", url, "--attempts", "1"}, flushArgs...)...)
	var st agent.Status
	if err := json.Unmarshal([]byte(agentRun(t, state, exitOK, "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	switch {
	case code == exitOK && st.Deletions == 0:
		if sent := agentRun(t, state, exitOK, "sent", "--last", "1"); !strings.Contains(sent, "deletion request") {
			t.Fatalf("delivered deletion not in the sent log: %s", sent)
		}
	case code == exitError && st.Deletions == 1:
		t.Log("this server does not take deletion requests yet; the request stays queued")
	default:
		t.Fatalf("after withdrawal: flush exit %d, status %+v", code, st)
	}
	if st.Events != 0 || st.Consent.Accepted {
		t.Fatalf("after withdrawal: %+v", st)
	}
}
