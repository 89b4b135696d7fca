package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/web"
)

// job is one background job of the run group; run returns nil when ctx
// ends and an error only when the job cannot go on.
type job struct {
	name string
	run  func(ctx context.Context) error
}

// backgroundJobs are the consumers the server owns besides ingest:
// retention and unfinished erasures everywhere, the rollups where no
// worker keeps them, the forwarders and the recipients' deletion notices.
func (s *Server) backgroundJobs(m *manifest.Manifest, svc *privacy.Service, owners *privacy.Registry, dash *web.Dashboard) []job {
	b := s.backend
	retention := &privacy.Retention{Store: b.Privacy, Manifest: m, Eraser: svc, Owners: owners, Logger: s.logger}
	jobs := []job{{"retention", retention.Run}}
	if s.refresh != nil {
		// Erasures mark the days they touched; one pass per interval
		// recomputes them all, wherever the rollups are kept.
		every := cmp.Or(s.cfg.RollupInterval, DefaultRollupInterval)
		jobs = append(jobs, job{"rollup-refresh", func(ctx context.Context) error { return s.refresh.Run(ctx, every) }})
	}
	if !b.HasWorkers() {
		warm := dash
		if s.cfg.ColdDashboard {
			warm = nil
		}
		jobs = append(jobs, job{"rollups", RollupJob(b, s.cfg.RollupInterval, s.logger, warm)})
	}
	for _, f := range s.forwards {
		jobs = append(jobs, job{"forward." + f.Recipient(), f.Run})
	}
	if n := svc.Notifier(); n != nil {
		// Erasures queue a deletion notice per recipient in the store;
		// this job delivers them, retried until each recipient confirms.
		n.Policy, n.Every = s.cfg.NoticeRetry, s.cfg.NoticeInterval
		jobs = append(jobs, job{"notices", n.Run})
	}
	return jobs
}

// RollupJob is the one rollup-updater job: serve runs it on the embedded
// and PostgreSQL-only stores, the scale-out workers on theirs. After an
// update that applied records it warms the dashboard's views, if any.
func RollupJob(b *backend.Backend, every time.Duration, logger *slog.Logger, dash *web.Dashboard) func(context.Context) error {
	u := b.Updater(logger)
	if dash != nil {
		u.Updated = func(ctx context.Context, _ rollup.Stats) {
			if err := dash.Warm(ctx); err != nil && ctx.Err() == nil {
				logger.Warn("dashboard: warming the views failed", "err", err)
			}
		}
	}
	return func(ctx context.Context) error { return u.Run(ctx, every) }
}

// newForwarders builds one forwarder per recipient configured in the file.
// They read the stored events from their own checkpoints, so a recipient
// that is down never slows ingest, and they skip every erased installation.
func newForwarders(cfg *Config, fc *forward.Config, b *backend.Backend, m *manifest.Manifest, svc *privacy.Service) (forward.Group, error) {
	senders, err := fc.Senders(cfg.Getenv)
	if err != nil {
		return nil, err
	}
	metrics, err := forward.NewMetrics(cfg.Registry)
	if err != nil {
		return nil, err
	}
	var group forward.Group
	for _, sender := range senders {
		o := forward.Options{Manifest: m, Log: b.Stored, Checkpoints: b.StoredCheckpoints, State: b.Forward,
			Suppressor: svc, Sender: sender, Metrics: metrics, Logger: cfg.Logger}
		fc.Apply(&o)
		f, err := forward.New(o)
		if err != nil {
			return nil, err
		}
		group = append(group, f)
	}
	if len(group) == 0 {
		return nil, errors.New("forward config: no recipient configured")
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
