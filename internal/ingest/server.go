// Package ingest is the receiving end of the wire: it decodes submissions
// within strict limits, validates every event against the manifest for the
// batch's region, turns the client address into a coarse location and
// drops it, appends the accepted events durably to the log and answers.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/geo"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/routemux"
)

// Deps is what the server needs. Log and Manifest are required.
type Deps struct {
	Log      provision.Log
	Manifest *manifest.Manifest
	Limits   Limits // zero value: DefaultLimits

	// ManifestVersions are the manifest versions agents may declare
	// besides Manifest's own, e.g. the previous one while a new manifest
	// rolls out: their events are checked against Manifest, which must
	// declare everything they may send. Other versions are refused
	// (unknown_manifest_version).
	ManifestVersions []string

	// Geo turns an address into a location; nil means every location is
	// unknown.
	Geo *geo.DB
	// ClientAddr finds the client address; nil means RemoteAddr.
	ClientAddr ClientAddr

	// Ready reports whether the store can take writes now (it must fail
	// while, say, its disk is full); /readyz calls it, and its success
	// clears a failed append. Nil means always.
	Ready func(ctx context.Context) error
	// Checkpoints and Consumers feed the log lag metric: Consumers lists
	// the consumers whose lag to report (nil: none).
	Checkpoints provision.Checkpoints
	Consumers   func(ctx context.Context) ([]string, error)

	// Deletion serves POST /v1/deletion; nil answers 501.
	Deletion http.Handler

	Logger   *slog.Logger         // nil: discard
	Registry *prometheus.Registry // nil: a new one, served on /metrics
	Now      func() time.Time     // nil: time.Now
}

// Server is the HTTP handler of the ingest API.
type Server struct {
	deps    Deps
	limits  Limits
	log     *slog.Logger
	metrics *metrics
	admit   *admission
	mux     *routemux.Mux

	versions    map[string]struct{}
	versionList string

	submitLimit   *clientLimiter
	deletionLimit *clientLimiter

	draining atomic.Bool
	// appendFailed is when the last append failed (Unix nanoseconds), 0
	// after a success, so /readyz reports a failing log at once; the
	// store's own probe clears it.
	appendFailed atomic.Int64
	probe        readyProbe
}

// NewServer builds the handler.
func NewServer(d Deps) (*Server, error) {
	if d.Log == nil || d.Manifest == nil {
		return nil, errors.New("ingest: Log and Manifest are required")
	}
	if d.Limits == (Limits{}) {
		d.Limits = DefaultLimits()
	}
	if err := d.Limits.Validate(); err != nil {
		return nil, err
	}
	if d.ClientAddr == nil {
		d.ClientAddr = RemoteAddr
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if d.Registry == nil {
		d.Registry = prometheus.NewRegistry()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	s := &Server{
		deps:          d,
		limits:        d.Limits,
		log:           d.Logger,
		metrics:       newMetrics(d.Registry),
		admit:         newAdmission(d.Limits),
		versions:      map[string]struct{}{d.Manifest.Version: {}},
		submitLimit:   newClientLimiter(d.Limits.SubmitRate, d.Limits.SubmitBurst, d.Limits.MaxClients),
		deletionLimit: newClientLimiter(d.Limits.DeletionRate, d.Limits.DeletionBurst, d.Limits.MaxClients),
	}
	for _, v := range d.ManifestVersions {
		if v == "" || len(v) > 64 {
			return nil, fmt.Errorf("ingest: manifest version %q must be 1 to 64 characters", v)
		}
		s.versions[v] = struct{}{}
	}
	s.versionList = strings.Join(slices.Sorted(maps.Keys(s.versions)), ", ")
	d.Registry.MustRegister(newLogCollector(d.Log, d.Checkpoints, d.Consumers))
	s.routes()
	return s, nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Drain makes the server refuse new submissions with 503 and report not
// ready, so a load balancer moves traffic away while in-flight requests
// finish. http.Server.Shutdown does the waiting.
func (s *Server) Drain() { s.draining.Store(true) }

// instrument counts and times a route.
func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		s.metrics.requests.WithLabelValues(route, statusLabel(sw.status)).Inc()
		s.metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func statusLabel(code int) string {
	const digits = "0123456789"
	if code < 100 || code > 599 {
		return "other"
	}
	return string([]byte{digits[code/100], digits[code/10%10], digits[code%10]})
}
