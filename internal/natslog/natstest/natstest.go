// Package natstest gives tests a log of their own: uniquely named streams on
// the NATS server at PROVISION_TEST_NATS, deleted when the test ends, or a
// JetStream server or cluster run in-process on 127.0.0.1.
package natstest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/provisionhq/provision/internal/natslog"
	"github.com/provisionhq/provision/internal/servicetest"
)

// URL returns the test server's URL. Without PROVISION_TEST_NATS the test is
// skipped, unless PROVISION_REQUIRE_SERVICES=1 makes that a failure.
func URL(tb testing.TB) string {
	tb.Helper()
	return servicetest.URL(tb, "PROVISION_TEST_NATS")
}

// Config returns a log configuration with stream and subject names no other
// test uses; the streams are deleted when the test ends.
func Config(tb testing.TB, url string) natslog.Config {
	tb.Helper()
	id := servicetest.Name("")
	cfg := natslog.DefaultConfig(url)
	cfg.Name = "test-" + id
	cfg.Stream = "T_" + strings.ToUpper(id)
	cfg.Subject = "t." + id + ".submissions"
	cfg.DeadStream = "T_" + strings.ToUpper(id) + "_DEAD"
	cfg.DeadSubject = "t." + id + ".dead"
	cfg.MaxAge = time.Hour
	cfg.DuplicateWindow = 10 * time.Minute
	tb.Cleanup(func() {
		nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
		if err != nil {
			return // the test stopped the server; nothing is left behind on it
		}
		defer nc.Close()
		js, err := nc.JetStream()
		if err != nil {
			return
		}
		for _, s := range []string{cfg.Stream, cfg.DeadStream} {
			_ = js.DeleteStream(s, nats.MaxWait(5*time.Second))
		}
	})
	return cfg
}

// Server is a JetStream server run in-process.
type Server struct {
	opts *server.Options
	mu   sync.Mutex
	srv  *server.Server
}

// URL is the client URL.
func (s *Server) URL() string { return fmt.Sprintf("nats://127.0.0.1:%d", s.opts.Port) }

// Stop shuts the server down, as a crash of its machine would.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.srv = nil
	}
}

// Start starts the server again with the same name, ports and storage.
func (s *Server) Start(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return
	}
	srv, err := server.NewServer(s.opts)
	if err != nil {
		tb.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		tb.Fatalf("nats server %s did not start", s.opts.ServerName)
	}
	s.srv = srv
}

// freePorts returns n distinct ports on 127.0.0.1 that were free a moment ago.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// Single starts one JetStream server in-process; it stops when the test
// ends. edit, when given, adjusts the server's options first.
func Single(tb testing.TB, edit ...func(*server.Options)) *Server {
	tb.Helper()
	port := freePorts(tb, 1)[0]
	s := &Server{opts: &server.Options{
		ServerName: "single", Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true,
		JetStream: true, StoreDir: tb.TempDir(),
	}}
	for _, e := range edit {
		e(s.opts)
	}
	s.Start(tb)
	tb.Cleanup(s.Stop)
	return s
}

// Cluster starts a JetStream cluster of n servers in-process; they stop when
// the test ends. It returns once the cluster has elected a meta leader.
func Cluster(tb testing.TB, n int) []*Server {
	tb.Helper()
	ports := freePorts(tb, 2*n)
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[n+i]))
	}
	servers := make([]*Server, n)
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: ports[i], NoLog: true, NoSigs: true,
			JetStream: true, StoreDir: tb.TempDir(),
			Cluster: server.ClusterOpts{Name: "provision-test", Host: "127.0.0.1", Port: ports[n+i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
		servers[i] = &Server{opts: opts}
	}
	for _, s := range servers {
		s.Start(tb)
		tb.Cleanup(s.Stop)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		for _, s := range servers {
			s.mu.Lock()
			leader := s.srv != nil && s.srv.JetStreamIsLeader()
			s.mu.Unlock()
			if leader {
				return servers
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatal("the JetStream cluster elected no meta leader in 30s")
	return nil
}

// URLs joins the servers' client URLs for a client that may use any of them.
func URLs(servers []*Server) string {
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.URL())
	}
	return strings.Join(urls, ",")
}

// Name is the server's name in the cluster.
func (s *Server) Name() string { return s.opts.ServerName }
