package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// killProxy stands between a host and the server and kills the host with
// SIGKILL in the middle of its first upload: before the batch reaches the
// server, or after the server stored it and before the host hears the
// answer — the instant where a retry could store it twice.
type killProxy struct {
	URL, CA     string
	afterServer bool

	mu     sync.Mutex
	host   *os.Process
	killed bool
}

var errHostKilled = errors.New("host killed")

func newKillProxy(t *testing.T, srv *server, afterServer bool) *killProxy {
	t.Helper()
	target, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(srv.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		t.Fatal("no certificate in the server's CA file")
	}
	p := &killProxy{afterServer: afterServer}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	rp.ModifyResponse = func(resp *http.Response) error {
		if p.afterServer && resp.Request.URL.Path == "/v1/submit" && resp.StatusCode == http.StatusOK && p.kill(t) {
			return errHostKilled
		}
		return nil
	}
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !p.afterServer && r.URL.Path == "/v1/submit" && p.kill(t) {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	p.URL = ts.URL
	p.CA = filepath.Join(t.TempDir(), "proxy.crt")
	if err := os.WriteFile(p.CA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// kill kills the host the first time it is called and waits until the
// process is dead, so that no answer can reach it.
func (p *killProxy) kill(t *testing.T) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.killed || p.host == nil {
		return false
	}
	p.killed = true
	if err := p.host.Signal(syscall.SIGKILL); err != nil {
		t.Errorf("kill host: %v", err)
	}
	stat := fmt.Sprintf("/proc/%d/stat", p.host.Pid)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b, err := os.ReadFile(stat)
		if err != nil { // reaped
			break
		}
		if _, rest, ok := strings.Cut(string(b), ") "); ok && strings.HasPrefix(rest, "Z") {
			break
		}
	}
	return true
}

func (p *killProxy) setHost(proc *os.Process) {
	p.mu.Lock()
	p.host = proc
	p.mu.Unlock()
}

// TestHostKilledDuringFlush: the C host records 20 errors and a task and
// is killed with SIGKILL during its first flush, at each of the two
// instants that matter; the next run of the host on the same state
// directory delivers everything, and the server holds each event exactly
// once — the retried batch carries the same id and bytes, and the server
// answers it as a duplicate instead of storing it again.
func TestHostKilledDuringFlush(t *testing.T) {
	needHostTools(t)
	srv := startServer(t)
	bin := compile(t, "gcc", "example-c", append([]string{"-std=c11", "../examples/c/main.c"}, linkShared(t)...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const errorsRecorded = 20
	type recovered struct{ installation, batch string }
	var runs []recovered

	for _, afterServer := range []bool{false, true} {
		name := "before the server stored the batch"
		if afterServer {
			name = "after the server stored the batch"
		}
		t.Run(name, func(t *testing.T) {
			state := t.TempDir()
			proxy := newKillProxy(t, srv, afterServer)
			cmd := exec.CommandContext(ctx, bin, "record", state, proxy.URL, proxy.CA)
			cmd.Env = append(os.Environ(), fmt.Sprintf("PROVISION_EXAMPLE_COUNT=%d", errorsRecorded))
			var stdout strings.Builder
			cmd.Stdout = &stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			proxy.setHost(cmd.Process)
			err := cmd.Wait()
			ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
			if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("the host was not killed during its flush (%v):\n%s", err, stdout.String())
			}
			out := parseHostOutput([]byte(stdout.String()))
			if len(out["flush_start"]) != 1 || len(out["flush"]) != 0 {
				t.Fatalf("the host was not killed inside its first flush:\n%s", stdout.String())
			}
			var consent struct {
				InstallationID string `json:"installation_id"`
			}
			out.decode(t, "consent", &consent)

			// The next run records nothing new and flushes straight to the
			// server.
			next := parseHostOutput(run(t, ctx, bin, "deliver", state, srv.URL, srv.CA))
			var sent []sentEntry
			next.decode(t, "sent", &sent)
			if len(sent) != 1 {
				t.Fatalf("sent log after recovery: %+v", sent)
			}
			e := sent[0]
			if e.Status != "accepted" || e.Events != errorsRecorded+1 || e.Duplicate != afterServer {
				t.Fatalf("recovery upload: status %s, %d events, duplicate %v; want accepted, %d, %v",
					e.Status, e.Events, e.Duplicate, errorsRecorded+1, afterServer)
			}
			runs = append(runs, recovered{consent.InstallationID, e.BatchID})
		})
	}

	for _, r := range runs {
		got := srv.export(t, r.installation)
		if !slices.Equal(got.Batches, []string{r.batch}) {
			t.Errorf("installation's submissions: %v, want the one batch %s", got.Batches, r.batch)
		}
		var codes []string
		tasks := 0
		for id, typ := range got.Events {
			switch typ {
			case "ui_error":
				codes = append(codes, got.Fields[id]["error.code"])
			case "task":
				tasks++
			default:
				t.Errorf("unexpected %s event", typ)
			}
		}
		slices.Sort(codes)
		var want []string
		for i := range errorsRecorded {
			want = append(want, fmt.Sprintf(`"E%d"`, 42+i))
		}
		slices.Sort(want)
		if !slices.Equal(codes, want) || tasks != 1 {
			t.Errorf("stored error codes %v and %d tasks; want %v and 1", codes, tasks, want)
		}
	}
}
