package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/postgres"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/sqlite"
	"github.com/provisionhq/provision/internal/web"
)

// serveBackend is what an ingest node runs on: the embedded SQLite store by
// default, or the scale-out engines (JetStream and/or PostgreSQL), in which
// case the node keeps no state of its own.
type serveBackend struct {
	log         provision.Log
	ready       func(context.Context) error
	checkpoints provision.Checkpoints
	consumers   func(context.Context) ([]string, error)
	privacy     privacy.Store
	forward     forward.State // nil where forwarders cannot run (JetStream: workers' store holds the events)
	embedded    *sqlite.Store // nil in the scale-out mode
	close       func() error
}

// openServeBackend opens what the flags name. Its close may be called more
// than once: serve closes early on shutdown and again on every error path.
func openServeBackend(ctx context.Context, dataDir string, so *scaleOutFlags, logger *slog.Logger) (*serveBackend, error) {
	b, err := openBackend(ctx, dataDir, so, logger)
	if err != nil {
		return nil, err
	}
	b.close = sync.OnceValue(b.close)
	return b, nil
}

func openBackend(ctx context.Context, dataDir string, so *scaleOutFlags, logger *slog.Logger) (*serveBackend, error) {
	switch {
	case so.log != "":
		if so.store == "" {
			return nil, errors.New("--log needs --store: resends after the duplicate window, checkpoints and erasure live in PostgreSQL")
		}
		l, err := so.openScaleOutLog(ctx, logger)
		if err != nil {
			return nil, err
		}
		return &serveBackend{
			// Checkpoints count PostgreSQL positions, not stream positions:
			// no lag figure can compare them with the JetStream head.
			log: l.Log, ready: l.Ready,
			privacy: postgres.NewPrivacyStore(l.Store), close: func() error { l.Close(); return nil },
		}, nil
	case so.store != "":
		pc, err := so.postgresConfig(logger)
		if err != nil {
			return nil, err
		}
		s, err := postgres.Open(ctx, pc)
		if err != nil {
			return nil, err
		}
		return &serveBackend{
			log: s, ready: s.Ping, checkpoints: s, consumers: s.Consumers,
			privacy: postgres.NewPrivacyStore(s), forward: s.ForwardState(), close: s.Close,
		}, nil
	}
	store, err := sqlite.Open(ctx, filepath.Join(dataDir, "provision.db"))
	if err != nil {
		return nil, err
	}
	return &serveBackend{
		log: store, ready: store.Ping, checkpoints: store, consumers: store.Consumers,
		privacy: sqlite.NewPrivacyStore(store.DB()), forward: sqlite.NewForwardState(store.DB()),
		embedded: store, close: store.Close,
	}, nil
}

// Close closes the log and store; safe to call more than once.
func (b *serveBackend) Close() error { return b.close() }

// backgroundJobs are the consumers serve owns besides ingest: retention
// and unfinished erasures everywhere, and on the embedded store the
// rollups behind the dashboard (in the scale-out mode workers keep them).
type backgroundJobs struct {
	wg   sync.WaitGroup
	stop context.CancelFunc
}

// startServeExtras builds the privacy service, mounts its endpoints and the
// dashboard on mux, and starts the background jobs.
func startServeExtras(ctx context.Context, e *env, cfg *serveConfig, b *serveBackend, m *manifest.Manifest, logger *slog.Logger, reg prometheus.Registerer, mux *http.ServeMux) (http.Handler, *backgroundJobs, error) {
	dataDir := cfg.Data
	svc, err := privacy.New(privacy.Options{Store: b.privacy, Manifest: m, Logger: logger})
	if err != nil {
		return nil, nil, err
	}
	// Operator endpoints exist only once an operator token was made with
	// `provision privacy token`; its hash is all the server keeps.
	if hash, err := privacy.LoadTokenHash(dataDir); err == nil {
		mux.Handle("/v1/admin/", privacy.NewAdminHandler(svc, hash))
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("operator token: %w", err)
	}

	jctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	jobs := &backgroundJobs{stop: stop}
	retention := &privacy.Retention{Store: b.privacy, Manifest: m, Eraser: svc, Logger: logger}
	jobs.wg.Go(func() { _ = retention.Run(jctx) })

	if cfg.ForwardConfig != "" {
		group, err := startForwarders(cfg.ForwardConfig, e, b, m, svc, logger, reg)
		if err != nil {
			stop()
			return nil, nil, err
		}
		mux.Handle("GET /readyz/forward", forwardStatusHandler(group))
		jobs.wg.Go(func() { group.Run(jctx) })
	}

	if b.embedded != nil {
		rollups := sqlite.NewRollupStore(b.embedded.DB())
		var dash *web.Dashboard
		// The dashboard signs its sessions with the operator's token, so
		// it is served only when the operator hands one over.
		if token := e.getenv("PROVISION_DASHBOARD_TOKEN"); token != "" {
			if dash, err = web.New(web.Config{Token: token, Rollups: rollups, Logger: logger}); err != nil {
				stop()
				return nil, nil, fmt.Errorf("dashboard: %w", err)
			}
			mux.Handle("/dashboard", dash)
			mux.Handle("/dashboard/", dash)
			mux.Handle("/v1/reports/", dash)
		}
		u := &rollup.Updater{Log: b.log, Store: rollups, Logger: logger}
		if dash != nil {
			u.Updated = func(ctx context.Context, _ rollup.Stats) { _ = dash.Warm(ctx) }
		}
		jobs.wg.Go(func() { _ = u.Run(jctx, time.Minute) })
	}
	return privacy.NewDeletionHandler(svc), jobs, nil
}

// Stop ends the background jobs and waits for them; safe to call twice.
func (j *backgroundJobs) Stop() {
	j.stop()
	j.wg.Wait()
}

// startForwarders builds one forwarder per recipient configured in the
// file. They read the log from their own checkpoints, so a recipient that
// is down never slows ingest, and they skip every erased installation.
func startForwarders(path string, e *env, b *serveBackend, m *manifest.Manifest, svc *privacy.Service, logger *slog.Logger, reg prometheus.Registerer) (forward.Group, error) {
	if b.forward == nil || b.checkpoints == nil {
		return nil, errors.New("--forward-config: with --log, run the forwarders on a node with --store only")
	}
	fc, err := forward.LoadConfig(path)
	if err != nil {
		return nil, err
	}
	senders, err := fc.Senders(e.getenv)
	if err != nil {
		return nil, err
	}
	metrics, err := forward.NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	var group forward.Group
	for _, sender := range senders {
		o := forward.Options{Manifest: m, Log: b.log, Checkpoints: b.checkpoints, State: b.forward,
			Suppressor: svc, Sender: sender, Metrics: metrics, Logger: logger}
		fc.Apply(&o)
		f, err := forward.New(o)
		if err != nil {
			return nil, err
		}
		group = append(group, f)
	}
	return group, nil
}

// forwardStatusHandler reports the forwarders: 200 when all are healthy,
// 503 when one is behind or failing. Ingest's own readiness is unaffected.
func forwardStatusHandler(g forward.Group) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		statuses, healthy := g.Status(r.Context())
		w.Header().Set("Content-Type", "application/json")
		if !healthy {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"healthy": healthy, "forwarders": statuses})
	})
}
