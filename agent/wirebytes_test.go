package agent_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/provisionhq/provision/agent"
	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/server"
)

// countingProxy relays TCP connections to a server and counts the payload
// bytes in each direction: what the agent costs on the wire, TLS
// handshakes included.
type countingProxy struct {
	ln       net.Listener
	target   string
	up, down atomic.Int64
	conns    atomic.Int64
	wg       sync.WaitGroup
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *countingProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.conns.Add(1)
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.wg.Add(2)
		relay := func(dst, src net.Conn, n *atomic.Int64) {
			defer p.wg.Done()
			k, _ := io.Copy(dst, src)
			n.Add(k)
			dst.(*net.TCPConn).CloseWrite()
		}
		go relay(s, c, &p.up)
		go relay(c, s, &p.down)
	}
}

// TestWireBytesPerInstallationDay runs the real agent against the real
// server on SQLite for a few simulated days, restarting the agent each day
// as a host process would, and counts every TCP payload byte between them.
// A day is the typical profile: the daily events, 120 errors of 3 kinds,
// one update task; the agent's own scheduler decides how often it uploads.
func TestWireBytesPerInstallationDay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	const budget = 4096
	dir := t.TempDir()
	b, err := backend.Open(context.Background(), backend.Options{Store: filepath.Join(dir, "server"), Create: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m, err := manifest.Parse("reference.yaml", manifest.ReferenceYAML())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Listen: "127.0.0.1:0", Data: filepath.Join(dir, "server")}, b, m)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start(context.Background())
	defer func() {
		if err := srv.Shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	}()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, srv.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	proxy := newCountingProxy(t, srv.Addr().String())

	state := filepath.Join(dir, "agent")
	var clock atomic.Int64
	clock.Store(time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	open := func() *agent.Agent {
		a, err := agent.Open(agent.Config{StateDir: state, Now: now,
			Software:            agent.Software{Type: "vpn", Name: "Secure Connection", Version: "5.14.0.1234", Edition: "premium", Localization: "en-GB"},
			LicenseProviderSite: "https://shop.example.com",
			ReadOS: func(context.Context) (agent.OSInfo, error) {
				return agent.OSInfo{Type: "linux", Version: "12 (bookworm)", Edition: "Debian GNU/Linux", UpdatePackages: testPackages(50)}, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := open()
	if _, err := a.Accept("eu"); err != nil {
		t.Fatal(err)
	}
	a.Close()

	const days = 4
	var perDay []int64
	for day := range days {
		dayEnd := now().Add(24 * time.Hour)
		a := open()
		ctx, cancel := context.WithCancel(context.Background())
		flushes := 0
		up := agent.Upload{Server: "https://" + proxy.ln.Addr().String(), CAFile: ca,
			Rand: func() float64 { return 0.5 },
			Sleep: func(ctx context.Context, d time.Duration) error {
				next := now().Add(d)
				if next.After(dayEnd) {
					clock.Store(dayEnd.UnixNano())
					cancel()
					return ctx.Err()
				}
				clock.Store(next.UnixNano())
				flushes++
				typicalDayEvents(t, a)
				return nil
			}}
		up0, down0 := proxy.up.Load(), proxy.down.Load()
		if err := a.Run(ctx, up); err != context.Canceled {
			t.Fatalf("run: %v", err)
		}
		a.Close()
		waitQuiet(proxy)
		u, d := proxy.up.Load()-up0, proxy.down.Load()-down0
		t.Logf("day %d: %d uploads, %d B up, %d B down, %d B in all", day+1, flushes, u, d, u+d)
		perDay = append(perDay, u+d)
	}
	sent, err := func() ([]agent.SentEntry, error) { a := open(); defer a.Close(); return a.Sent(100) }()
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	for _, e := range sent {
		accepted += e.Accepted
	}
	if accepted == 0 {
		t.Fatal("the server accepted nothing: the count measured no upload")
	}
	// The first day makes the installation's one full handshake; the
	// others resume it.
	var steady int64
	for _, n := range perDay[1:] {
		steady = max(steady, n)
	}
	fmt.Printf("wire bytes per installation-day: first day %d B, then at most %d B (budget %d B)\n", perDay[0], steady, budget)
	if steady > budget {
		t.Errorf("a typical installation-day costs %d B on the wire, over the %d B budget", steady, budget)
	}
}

// waitQuiet waits until the proxy's relays have counted what was closed.
func waitQuiet(p *countingProxy) {
	for last := int64(-1); ; {
		time.Sleep(50 * time.Millisecond)
		n := p.up.Load() + p.down.Load()
		if n == last {
			return
		}
		last = n
	}
}

func testPackages(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("package-%02d=1.%d.%d-1+deb12u%d", i, i%7, i, i%5)
	}
	return out
}

func typicalDayEvents(t *testing.T, a *agent.Agent) {
	ctx := context.Background()
	for i := range 120 {
		if err := a.RecordError(ctx, agent.UIError{Type: "connection_failed", Code: fmt.Sprintf("E%d", 40+i%3), ControlID: "connect_button"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.RecordTask(ctx, agent.Task{Type: agent.TaskUpdate, Status: agent.TaskSuccess, Duration: 41 * time.Second}); err != nil {
		t.Fatal(err)
	}
}
