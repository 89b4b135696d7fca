package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/ingest/ingesttest"
)

func TestServeConfigValidateNamesField(t *testing.T) {
	base := func() serveConfig {
		c := defaultServeConfig()
		c.Data = t.TempDir()
		return c
	}
	if c := base(); c.Validate() != nil {
		t.Fatalf("valid config: %v", c.Validate())
	}
	for _, tc := range []struct {
		field string
		edit  func(*serveConfig)
	}{
		{"data", func(c *serveConfig) { c.Data = "" }},
		{"listen", func(c *serveConfig) { c.Listen = "nonsense" }},
		{"listen", func(c *serveConfig) { c.Listen = "127.0.0.1:99999" }},
		{"tls_cert", func(c *serveConfig) { c.TLSCert = "x.crt" }},
		{"insecure_http", func(c *serveConfig) {
			c.InsecureHTTP, c.TLSCert, c.TLSKey, c.TrustedProxyHeader = true, "a", "b", "X-Real-IP"
		}},
		{"trusted_proxy_header", func(c *serveConfig) { c.InsecureHTTP = true }},
		{"trusted_proxy_header", func(c *serveConfig) { c.TrustedProxyHeader = "X-Forwarded-For" }},
		{"trusted_proxy_header", func(c *serveConfig) { c.InsecureHTTP, c.TrustedProxyHeader = true, "bad header" }},
		{"log_level", func(c *serveConfig) { c.LogLevel = "loud" }},
		{"shutdown_timeout", func(c *serveConfig) { c.ShutdownTimeout = 0 }},
		{"limits.max_depth", func(c *serveConfig) { c.Limits.MaxDepth = 2 }},
	} {
		c := base()
		tc.edit(&c)
		err := c.Validate()
		// A setting is named as the flag and as the YAML key.
		want := "--" + strings.ReplaceAll(tc.field, "_", "-") + " (" + tc.field + "):"
		if strings.HasPrefix(tc.field, "limits.") {
			want = tc.field + ":"
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: Validate() = %v, want %q", tc.field, err, want)
		}
	}
}

func TestServeConfigSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "serve.yaml")
	os.WriteFile(file, []byte("data: /from/yaml\nlisten: 127.0.0.1:1\nlog_level: warn\nlimits:\n  max_events: 700\n"), 0o600)
	c := defaultServeConfig()
	if err := c.loadYAML(file); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PROVISION_LISTEN": "127.0.0.1:2"}
	if err := c.loadEnv(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if c.Data != "/from/yaml" || c.Listen != "127.0.0.1:2" || c.LogLevel != "warn" || c.ingestLimits().MaxEvents != 700 {
		t.Errorf("merged config = %+v", c)
	}

	os.WriteFile(file, []byte("data: x\nlisten_addr: 1\n"), 0o600)
	if err := c.loadYAML(file); err == nil || !strings.Contains(err.Error(), "listen_addr") {
		t.Errorf("unknown key: %v", err)
	}
	os.WriteFile(file, nil, 0o600)
	if err := c.loadYAML(file); err != nil {
		t.Errorf("empty file: %v", err)
	}
	env = map[string]string{"PROVISION_INSECURE_HTTP": "maybe"}
	if err := c.loadEnv(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "PROVISION_INSECURE_HTTP") {
		t.Errorf("bad env: %v", err)
	}
}

// lockedBuffer collects a command's output while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listeningRE = regexp.MustCompile(`listening on (https?)://(\S+)`)

// waitListening polls output for the address the server listens on.
func waitListening(t *testing.T, out func() string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if m := listeningRE.FindStringSubmatch(out()); m != nil {
			return m[2]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("server did not start:\n%s", out())
	return ""
}

// pinnedClient trusts exactly the certificate in the data directory.
func pinnedClient(t *testing.T, dataDir string) *http.Client {
	t.Helper()
	pemBytes, err := os.ReadFile(filepath.Join(dataDir, "server.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		t.Fatal("server.crt holds no certificate")
	}
	return &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
}

func submit(c *http.Client, addr string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest("POST", "https://"+addr+"/v1/submit", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func TestServeOverTLSAndShutDown(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	start := func() (context.CancelFunc, *lockedBuffer, chan int) {
		ctx, cancel := context.WithCancel(context.Background())
		out, errOut := &lockedBuffer{}, &lockedBuffer{}
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"serve", "--data", data, "--listen", "127.0.0.1:0"}, func(string) string { return "" }, strings.NewReader(""), out, errOut)
		}()
		return cancel, out, done
	}
	cancel, out, done := start()
	addr := waitListening(t, out.String)
	if !strings.Contains(out.String(), "generated a self-signed certificate") {
		t.Errorf("no generation notice:\n%s", out)
	}
	pin := regexp.MustCompile(`pin: ([0-9a-f]{64})`).FindStringSubmatch(out.String())
	if pin == nil {
		t.Fatalf("no SPKI pin printed:\n%s", out)
	}
	client := pinnedClient(t, data)
	b := ingesttest.Batch(rand.New(rand.NewPCG(5, 6)), "tls-batch", 20, time.Now())
	status, body, err := submit(client, addr, ingesttest.Gzip(ingesttest.JSON(b)))
	if err != nil || status != 200 {
		t.Fatalf("submit = %d %s %v", status, body, err)
	}
	var resp struct{ Accepted int }
	json.Unmarshal(body, &resp)
	if resp.Accepted != 20 {
		t.Errorf("accepted %d", resp.Accepted)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, out)
	}
	if !strings.Contains(out.String(), "stopped") {
		t.Errorf("no clean stop:\n%s", out)
	}

	// The second start keeps the certificate (same pin) and the data.
	cancel, out, done = start()
	defer func() { cancel(); <-done }()
	addr = waitListening(t, out.String)
	if strings.Contains(out.String(), "generated") || !strings.Contains(out.String(), pin[1]) {
		t.Errorf("certificate changed on restart:\n%s", out)
	}
	status, body, err = submit(pinnedClient(t, data), addr, ingesttest.Gzip(ingesttest.JSON(b)))
	if err != nil || status != 200 || !bytes.Contains(body, []byte(`"duplicate":true`)) {
		t.Errorf("resend after restart = %d %s %v", status, body, err)
	}
}

func TestServeRefusesBadConfig(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run(t.Context(), []string{"serve", "--data", t.TempDir(), "--insecure-http"}, func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
	if code != exitError || !strings.Contains(errOut.String(), "--trusted-proxy-header (trusted_proxy_header):") {
		t.Errorf("exit %d, stderr %s", code, errOut.String())
	}
	// A port in use fails at once, before serving.
	code = run(t.Context(), []string{"serve", "--data", t.TempDir(), "--listen", "256.0.0.1:1"}, func(string) string { return "" }, strings.NewReader(""), &out, &errOut)
	if code != exitError || !strings.Contains(errOut.String(), "listen") {
		t.Errorf("bad listen: exit %d, stderr %s", code, errOut.String())
	}
}

// A serve that cannot listen writes nothing: no store, no certificate.
func TestServePortInUseWritesNothing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	data := filepath.Join(t.TempDir(), "data")
	code, _, stderr := runCmd(t, "", "serve", "--data", data, "--listen", ln.Addr().String())
	if code != exitError || !strings.Contains(stderr, "listen") {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("serve made %s before it could listen: %v", data, err)
	}
}

// Configuration errors speak the user's words: the key as typed, the
// allowed keys and the kind of value, never a Go type name.
func TestServeConfigErrorsNameKeys(t *testing.T) {
	file := filepath.Join(t.TempDir(), "serve.yaml")
	os.WriteFile(file, []byte("lsten: \":1\"\nshutdown_timeout: soon\nlimits:\n  max_events: many\n"), 0o600)
	code, _, stderr := runCmd(t, "", "serve", "--config", file)
	if code != exitError {
		t.Fatalf("exit %d", code)
	}
	for _, want := range []string{"lsten (line 1): unknown key", "listen, log_format", "shutdown_timeout (line 2): \"soon\" is not a duration",
		"limits.max_events (line 4): \"many\" is not a whole number"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q: %s", want, stderr)
		}
	}
	if strings.Contains(stderr, "main.") || strings.Contains(stderr, "time.Duration") || strings.Contains(stderr, "!!str") {
		t.Errorf("stderr names Go or YAML types: %s", stderr)
	}
}
