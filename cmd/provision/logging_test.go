package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestLoggerFormatsAndLevels(t *testing.T) {
	var buf bytes.Buffer
	l, err := newLogger(&buf, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["msg"] != "shown" || line["k"] != 1.0 {
		t.Fatalf("json: %v %s", err, buf.String())
	}
	buf.Reset()
	if l, err = newLogger(&buf, "debug", "text"); err != nil {
		t.Fatal(err)
	}
	l.Debug("d", "k", "v")
	if !strings.Contains(buf.String(), "level=DEBUG msg=d k=v") {
		t.Fatalf("text: %s", buf.String())
	}
	for _, bad := range [][2]string{{"loud", "json"}, {"info", "xml"}} {
		if _, err := newLogger(&buf, bad[0], bad[1]); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	if code, _, stderr := runCmd(t, "", "worker", "--log", "nats://127.0.0.1:1", "--store", "postgres://127.0.0.1/x", "--log-format", "xml"); code != exitError || !strings.Contains(stderr, "--log-format") {
		t.Errorf("worker --log-format xml: exit %d %q", code, stderr)
	}
}
