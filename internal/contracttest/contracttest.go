// Package contracttest is a server that follows the agent–server wire
// contract to the letter, for the agent's tests: it decodes gzip, zstd and
// identity bodies, validates batches against the manifest, answers a resend
// of a batch id with the first answer's bytes, and can be told to refuse
// with 503 and Retry-After, to reject event types, or to fail a batch.
package contracttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/manifest"
)

// Limits of the server, as a real one would have.
const (
	MaxBody    = 4 << 20
	MaxDecoded = 16 << 20
)

// Server is a running contract server.
type Server struct {
	*httptest.Server

	mu         sync.Mutex
	m          *manifest.Manifest
	refuse     int    // answer this many submissions with 503
	retryAfter string // Retry-After on those answers
	reject     map[string]bool
	failWith   int // answer every submission with this status when set
	failDel    int // answer every deletion request with this status when set
	answers    map[string][]byte
	attempts   map[string]int
	batches    []provision.Batch
	deletions  []map[string]string
	wireBytes  []int
	encodings  []string
	requests   int
}

// New starts a TLS server on 127.0.0.1.
func New() *Server {
	s := &Server{m: manifest.Reference(), reject: map[string]bool{}, answers: map[string][]byte{}, attempts: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/submit", s.submit)
	mux.HandleFunc("POST /v1/deletion", s.deletion)
	s.Server = httptest.NewUnstartedServer(mux)
	// Handshakes the tests make fail on purpose would fill the output.
	s.Server.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.Server.StartTLS()
	return s
}

// Refuse makes the next n submissions answer 503 with Retry-After.
func (s *Server) Refuse(n int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse, s.retryAfter = n, retryAfter
}

// RejectType makes the server reject every event of the type inside an
// accepted batch.
func (s *Server) RejectType(t string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject[t] = true
}

// FailWith answers every submission with the status (0 turns it off).
func (s *Server) FailWith(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failWith = status
}

// FailDeletions answers every deletion request with the status (0 turns
// it off).
func (s *Server) FailDeletions(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failDel = status
}

// Batches returns the distinct batches stored.
func (s *Server) Batches() []provision.Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]provision.Batch(nil), s.batches...)
}

// Attempts returns how many times each batch id was posted.
func (s *Server) Attempts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.attempts {
		out[k] = v
	}
	return out
}

// Deletions returns the deletion requests received.
func (s *Server) Deletions() []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]map[string]string(nil), s.deletions...)
}

// WireBytes returns the compressed size of every submission body received.
func (s *Server) WireBytes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]int(nil), s.wireBytes...)
}

// Encodings returns the Content-Encoding of every submission received.
func (s *Server) Encodings() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.encodings...)
}

// Requests counts every request that reached a handler.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil || len(body) > MaxBody {
		fail(w, http.StatusRequestEntityTooLarge, "too_large", "body too large")
		return
	}
	s.wireBytes = append(s.wireBytes, len(body))
	enc := r.Header.Get("Content-Encoding")
	s.encodings = append(s.encodings, enc)
	var plain io.Reader
	switch enc {
	case "", "identity":
		plain = bytes.NewReader(body)
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			fail(w, http.StatusBadRequest, "bad_encoding", err.Error())
			return
		}
		plain = zr
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body), zstd.WithDecoderMaxMemory(MaxDecoded), zstd.WithDecoderConcurrency(1))
		if err != nil {
			fail(w, http.StatusBadRequest, "bad_encoding", err.Error())
			return
		}
		defer zr.Close()
		plain = zr
	default:
		fail(w, http.StatusUnsupportedMediaType, "unsupported_encoding", enc)
		return
	}
	data, err := io.ReadAll(io.LimitReader(plain, MaxDecoded+1))
	if err != nil || len(data) > MaxDecoded {
		fail(w, http.StatusRequestEntityTooLarge, "too_large", "decoded body too large or corrupt")
		return
	}
	var b provision.Batch
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil {
		fail(w, http.StatusBadRequest, "bad_json", err.Error())
		return
	}
	s.attempts[b.ID]++
	if s.failWith != 0 {
		fail(w, s.failWith, "test_failure", "refused by the test")
		return
	}
	if s.refuse > 0 {
		s.refuse--
		w.Header().Set("Retry-After", s.retryAfter)
		fail(w, http.StatusServiceUnavailable, "unavailable", "try later")
		return
	}
	if prev, ok := s.answers[b.ID]; ok {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(prev)
		return
	}
	violations := s.m.CheckBatch(&b)
	type rejection struct {
		Index   int    `json:"index"`
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	rejected := []rejection{}
	bad := map[int]bool{}
	for _, v := range violations {
		if v.Index < 0 {
			fail(w, http.StatusBadRequest, string(v.Code), v.String())
			return
		}
		if !bad[v.Index] {
			bad[v.Index] = true
			rejected = append(rejected, rejection{v.Index, string(v.Code), v.String()})
		}
	}
	for i, ev := range b.Events {
		if s.reject[ev.Type] && !bad[i] {
			bad[i] = true
			rejected = append(rejected, rejection{i, "rejected_by_test", fmt.Sprintf("events of type %s are refused", ev.Type)})
		}
	}
	kept := b
	kept.Events = nil
	for i, ev := range b.Events {
		if !bad[i] {
			kept.Events = append(kept.Events, ev)
		}
	}
	s.batches = append(s.batches, kept)
	answer, _ := json.Marshal(map[string]any{"batch_id": b.ID, "accepted": len(kept.Events), "rejected": rejected, "duplicate": false})
	s.answers[b.ID] = answer
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(answer)
}

func (s *Server) deletion(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if s.failDel != 0 {
		fail(w, s.failDel, "test_failure", "refused by the test")
		return
	}
	var req map[string]string
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil || req["installation_id"] == "" || req["request_id"] == "" {
		fail(w, http.StatusBadRequest, "bad_request", "installation_id and request_id are required")
		return
	}
	s.deletions = append(s.deletions, req)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"request_id": req["request_id"], "status": "pending"})
}

// RetryAfterSeconds formats n seconds for Refuse.
func RetryAfterSeconds(n int) string { return strconv.Itoa(n) }
