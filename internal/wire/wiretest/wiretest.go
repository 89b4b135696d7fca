// Package wiretest runs the real ingest handler (ingest.NewServer) over
// TLS on 127.0.0.1, on an in-memory log, with faults a test can inject:
// refuse the next submissions with 503 and a Retry-After, answer every
// submission or deletion with a status, or take a manifest that rejects
// what the agent sends. The agent's tests run against it, so they see the
// contract the server keeps — codes, duplicate answers, limits — and not
// a copy of it.
package wiretest

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/memlog"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/recorder"
	"github.com/provisionhq/provision/internal/wire"
)

// Options configure a server; the zero value serves the reference
// manifest.
type Options struct {
	Manifest *manifest.Manifest
}

// Server is a running ingest server.
type Server struct {
	*httptest.Server
	Log *memlog.Log

	mu       sync.Mutex
	refuse   int
	after    time.Duration
	failWith *wire.Error
	failDel  *wire.Error
	attempts map[string]int
	requests int

	deletions recorder.List[wire.DeletionRequest]
	encodings recorder.List[string]
	wireBytes recorder.List[int]
}

// New starts a server. It stops with the test.
func New(t testing.TB, o Options) *Server {
	t.Helper()
	m := o.Manifest
	if m == nil {
		m = manifest.Reference()
	}
	s := &Server{Log: memlog.New(), attempts: map[string]int{}}
	h, err := ingest.NewServer(ingest.Deps{Log: faultyLog{s}, Manifest: m, Deletion: http.HandlerFunc(s.deletion)})
	if err != nil {
		t.Fatal(err)
	}
	s.Server = httptest.NewUnstartedServer(s.observe(h))
	// Handshakes the tests make fail on purpose would fill the output.
	s.Server.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Server.StartTLS()
	t.Cleanup(s.Close)
	return s
}

// CAFile writes the server's certificate as a PEM file of roots to trust.
func (s *Server) CAFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Refuse makes the log refuse the next n batches, so that ingest answers
// 503 with a Retry-After of after.
func (s *Server) Refuse(n int, after time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse, s.after = n, after
}

// FailWith answers every submission with the status and code before
// ingest sees it; status 0 turns it off.
func (s *Server) FailWith(status int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failWith = failure(status, code)
}

// FailDeletions answers every deletion request with the status and code;
// status 0 turns it off.
func (s *Server) FailDeletions(status int, code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failDel = failure(status, code)
}

func failure(status int, code string) *wire.Error {
	if status == 0 {
		return nil
	}
	return wire.Errorf(status, code, "refused by the test")
}

// Attempts counts, per batch id, the submissions that reached the log:
// the first, the refused and the resends.
func (s *Server) Attempts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.attempts))
	for k, v := range s.attempts {
		out[k] = v
	}
	return out
}

// Batches returns the batches the log holds events of, with the
// accepted events, in the order they were stored.
func (s *Server) Batches() []provision.Batch {
	recs, err := s.Log.Read(context.Background(), 0, s.Log.Len())
	if err != nil {
		panic(err) // the memory log fails only when told to
	}
	var out []provision.Batch
	for _, r := range recs {
		if n := len(out); n == 0 || out[n-1].ID != r.BatchID {
			out = append(out, provision.Batch{ID: r.BatchID, InstallationID: r.InstallationID, Region: r.Region})
		}
		out[len(out)-1].Events = append(out[len(out)-1].Events, r.Event)
	}
	return out
}

// Deletions returns the deletion requests accepted.
func (s *Server) Deletions() []wire.DeletionRequest { return s.deletions.All() }

// Encodings returns the Content-Encoding of every submission.
func (s *Server) Encodings() []string { return s.encodings.All() }

// WireBytes returns the size of every submission body as it came.
func (s *Server) WireBytes() []int { return s.wireBytes.All() }

// Requests counts every request that reached the server.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// observe records what came and answers with the injected failure.
func (s *Server) observe(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests++
		fail := s.failWith
		if r.URL.Path == "/v1/submit" {
			s.encodings.Add(r.Header.Get("Content-Encoding"))
			s.wireBytes.Add(int(r.ContentLength))
		} else {
			fail = nil
		}
		s.mu.Unlock()
		if fail != nil {
			wire.WriteError(w, fail)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// deletion takes a deletion request as the privacy endpoint decodes it,
// records it and answers pending: erasing is the privacy package's part.
func (s *Server) deletion(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	fail := s.failDel
	s.mu.Unlock()
	if fail != nil {
		wire.WriteError(w, fail)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, privacy.MaxRequestBody))
	if err != nil {
		wire.WriteError(w, wire.Errorf(http.StatusRequestEntityTooLarge, wire.CodeBodyTooLarge, "%v", err))
		return
	}
	var req wire.DeletionRequest
	if err := privacy.DecodeDeletionJSON(body, &req); err != nil {
		wire.WriteError(w, wire.Errorf(http.StatusBadRequest, wire.CodeBadJSON, "%v", err))
		return
	}
	if !privacy.ValidRequestID(req.RequestID) {
		wire.WriteError(w, wire.Errorf(http.StatusBadRequest, wire.CodeBadRequestID, "request_id must be a UUID"))
		return
	}
	s.deletions.Add(req)
	wire.WriteJSON(w, http.StatusAccepted, wire.DeletionAnswer{RequestID: req.RequestID, Status: privacy.StatusPending})
}

// faultyLog is the memory log with refusals injected.
type faultyLog struct{ s *Server }

func (l faultyLog) Append(ctx context.Context, sub *provision.Submission) ([]byte, bool, error) {
	s := l.s
	s.mu.Lock()
	s.attempts[sub.BatchID]++
	refuse := s.refuse > 0
	if refuse {
		s.refuse--
	}
	after := s.after
	s.mu.Unlock()
	if refuse {
		return nil, false, wire.Busy(http.StatusServiceUnavailable, wire.CodeUnavailable, fmt.Sprintf("refused by the test; retry in %s", after), after)
	}
	return s.Log.Append(ctx, sub)
}

func (l faultyLog) Read(ctx context.Context, after int64, limit int) ([]provision.Record, error) {
	return l.s.Log.Read(ctx, after, limit)
}

func (l faultyLog) Head(ctx context.Context) (int64, error) { return l.s.Log.Head(ctx) }
