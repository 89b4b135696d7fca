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
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/ingest"
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

// Every ingest limit has a key under limits:, named as the field's
// validation message names it.
func TestServeConfigCoversEveryLimit(t *testing.T) {
	lt := reflect.TypeFor[ingest.Limits]()
	for i := range lt.NumField() {
		f := lt.Field(i)
		key := f.Tag.Get("yaml")
		if key == "" {
			t.Errorf("ingest.Limits.%s has no key in serve's limits:", f.Name)
			continue
		}
		// -1 is out of range for every limit.
		l := ingest.DefaultLimits()
		v := reflect.ValueOf(&l).Elem().Field(i)
		switch v.Kind() {
		case reflect.Float64:
			v.SetFloat(-1)
		default:
			v.SetInt(-1)
		}
		if err := l.Validate(); err == nil || !strings.Contains(err.Error(), "limits."+key+":") {
			t.Errorf("ingest.Limits.%s = -1: Validate says %v, want it named limits.%s", f.Name, err, key)
		}
	}
}

// The limits in the YAML file are the server's: a batch over max_events is
// refused, a client over submit_burst waits; a bad value names its key.
func TestServeConfigLimitsApply(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "serve.yaml")
	os.WriteFile(file, []byte("limits:\n  max_events: 5\n  submit_rate: 0.001\n  submit_burst: 2\n  min_body_rate: 1024\n  body_grace: 2s\n  deletion_rate: .inf\n"), 0o600)
	c := defaultServeConfig()
	if err := c.loadYAML(file); err != nil {
		t.Fatal(err)
	}
	l := c.ingestLimits()
	if l.MaxEvents != 5 || l.SubmitRate != 0.001 || l.SubmitBurst != 2 || l.MinBodyRate != 1024 || l.BodyGrace != 2*time.Second ||
		l.DeletionRate != rate.Inf || l.DeletionBurst != ingest.DefaultLimits().DeletionBurst {
		t.Errorf("limits from YAML = %+v", l)
	}

	ctx, cancel := context.WithCancel(context.Background())
	out, errOut := &lockedBuffer{}, &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--config", file, "--data", filepath.Join(dir, "data"), "--listen", "127.0.0.1:0",
			"--insecure-http", "--trusted-proxy-header", "X-Forwarded-For"},
			func(string) string { return "" }, strings.NewReader(""), out, errOut)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("serve exited %d: %s", code, errOut)
		}
	}()
	addr := waitListening(t, out.String)
	rng := rand.New(rand.NewPCG(2, 18))
	post := func(b provision.Batch) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/submit", bytes.NewReader(ingesttest.JSON(b)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", "192.0.2.7")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if status, body := post(ingesttest.Batch(rng, "six", 6, time.Now())); status != 400 || !strings.Contains(body, "too_many_events") {
		t.Errorf("6 events with max_events 5 = %d %s", status, body)
	}
	if status, body := post(ingesttest.Batch(rng, "five", 5, time.Now())); status != 200 {
		t.Errorf("5 events = %d %s", status, body)
	}
	// The two requests above took the burst of 2.
	if status, body := post(ingesttest.Batch(rng, "third", 1, time.Now())); status != 429 || !strings.Contains(body, "rate_limited") {
		t.Errorf("third request with submit_burst 2 = %d %s", status, body)
	}

	os.WriteFile(file, []byte("limits:\n  submit_rate: fast\n  deletion_burst: 0\n  max_in_flight: -1\n"), 0o600)
	code, _, stderr := runCmd(t, "", "serve", "--config", file, "--data", filepath.Join(dir, "other"))
	if code != exitError {
		t.Fatalf("bad limits: exit %d", code)
	}
	if want := `limits.submit_rate (line 2): "fast" is not a number`; !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q: %s", want, stderr)
	}
	os.WriteFile(file, []byte("limits:\n  deletion_burst: -3\n  max_in_flight: -1\n"), 0o600)
	code, _, stderr = runCmd(t, "", "serve", "--config", file, "--data", filepath.Join(dir, "other"))
	for _, want := range []string{"limits.deletion_burst: must be at least 1, is -3", "limits.max_in_flight: must be positive, is -1"} {
		if code != exitError || !strings.Contains(stderr, want) {
			t.Errorf("exit %d, stderr lacks %q: %s", code, want, stderr)
		}
	}
}
