// Package natslog is the replicated log of accepted submissions on NATS
// JetStream, for deployments where stateless ingest nodes append and a pool
// of workers consumes. One message holds one submission; its batch id is the
// message id, so JetStream's duplicate window drops a resend and the ingest
// node answers it with the stored answer of the first.
package natslog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config says where the log lives and how the ingest side behaves under load.
type Config struct {
	// URL is a nats:// URL, or several separated by commas.
	URL string
	// Name identifies the connection in the server's monitoring.
	Name string
	// Stream and Subject hold the submissions.
	Stream  string
	Subject string
	// DeadStream and DeadSubject keep the messages workers could not
	// process after MaxDeliver attempts, for an operator to inspect.
	DeadStream  string
	DeadSubject string
	// Replicas is the stream's replication factor: 1 on a single server,
	// 3 in a cluster.
	Replicas int
	// DuplicateWindow is how long JetStream remembers batch ids.
	DuplicateWindow time.Duration
	// MaxAge is how long the stream keeps messages, so that consumers can
	// be replayed; it must be at least DuplicateWindow.
	MaxAge time.Duration
	// MaxInFlight bounds the publishes waiting for their acknowledgement.
	MaxInFlight int
	// SlotWait is how long an Append waits for a publish slot before it
	// answers ErrUnavailable (the client gets 503 and retries later).
	SlotWait time.Duration
	// PublishTimeout bounds the wait for JetStream's acknowledgement.
	PublishTimeout time.Duration
	// Responses, when set, answers resends that arrive after the duplicate
	// window from the store that workers write to.
	Responses ResponseLookup
	// Logger receives operational messages; nil discards them.
	Logger *slog.Logger
}

// ResponseLookup finds the answer stored for an installation's batch id, or returns an error
// wrapping provision.ErrNotFound.
type ResponseLookup interface {
	LookupResponse(ctx context.Context, installationID, batchID string) ([]byte, error)
}

// DefaultConfig returns a Config with the defaults filled in.
func DefaultConfig(url string) Config {
	return Config{
		URL:             url,
		Name:            "provision",
		Stream:          "PROVISION",
		Subject:         "provision.submissions",
		DeadStream:      "PROVISION_DEAD",
		DeadSubject:     "provision.submissions.dead",
		Replicas:        1,
		DuplicateWindow: 10 * time.Minute,
		MaxAge:          72 * time.Hour,
		MaxInFlight:     256,
		SlotWait:        200 * time.Millisecond,
		PublishTimeout:  5 * time.Second,
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("nats.url: required"))
	}
	if c.Stream == "" || c.Subject == "" {
		errs = append(errs, errors.New("nats.stream, nats.subject: required"))
	}
	if c.DeadStream == "" || c.DeadSubject == "" {
		errs = append(errs, errors.New("nats.dead_stream, nats.dead_subject: required"))
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("nats.replicas: %d is outside 1..5", c.Replicas))
	}
	if c.DuplicateWindow <= 0 {
		errs = append(errs, errors.New("nats.duplicate_window: must be positive"))
	}
	if c.MaxAge < c.DuplicateWindow {
		errs = append(errs, errors.New("nats.max_age: must be at least the duplicate window"))
	}
	if c.MaxInFlight < 1 {
		errs = append(errs, fmt.Errorf("nats.max_in_flight: %d must be at least 1", c.MaxInFlight))
	}
	if c.SlotWait < 0 {
		errs = append(errs, errors.New("nats.slot_wait: negative"))
	}
	if c.PublishTimeout <= 0 {
		errs = append(errs, errors.New("nats.publish_timeout: must be positive"))
	}
	return errors.Join(errs...)
}

// Log is the JetStream log. It is safe for concurrent use.
type Log struct {
	cfg    Config
	nc     *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	slots  chan struct{}
	log    *slog.Logger
	closer sync.Once
	closed chan struct{} // closed by the client's last callback
}

// Open connects and creates or updates the streams.
func Open(ctx context.Context, cfg Config) (*Log, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	closed := make(chan struct{})
	nc, err := nats.Connect(cfg.URL,
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		// While disconnected, publishes wait in a bounded buffer; past it
		// they fail at once and the client is told to come back.
		nats.ReconnectBufSize(8<<20),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			logger.Warn("nats disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			logger.Info("nats reconnected", "server", nc.ConnectedServerName())
		}),
		// Callbacks run in order on the client's own goroutine; this one
		// is last, so Close can wait until none is left running.
		nats.ClosedHandler(func(*nats.Conn) { close(closed) }),
	)
	if err != nil {
		return nil, fmt.Errorf("natslog: connect: %w", unavailable(err))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("natslog: %w", err)
	}
	l := &Log{cfg: cfg, nc: nc, js: js, slots: make(chan struct{}, cfg.MaxInFlight), log: logger, closed: closed}
	if err := l.ensureStreams(ctx); err != nil {
		nc.Close()
		return nil, err
	}
	return l, nil
}

func (l *Log) ensureStreams(ctx context.Context) error {
	var err error
	l.stream, err = l.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        l.cfg.Stream,
		Description: "Provision: accepted submissions, one message per batch",
		Subjects:    []string{l.cfg.Subject},
		Storage:     jetstream.FileStorage,
		Replicas:    l.cfg.Replicas,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      l.cfg.MaxAge,
		Duplicates:  l.cfg.DuplicateWindow,
		Discard:     jetstream.DiscardOld,
		AllowDirect: true,
	})
	if err != nil {
		return fmt.Errorf("natslog: stream %s: %w", l.cfg.Stream, unavailable(err))
	}
	_, err = l.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        l.cfg.DeadStream,
		Description: "Provision: submissions that workers could not process",
		Subjects:    []string{l.cfg.DeadSubject},
		Storage:     jetstream.FileStorage,
		Replicas:    l.cfg.Replicas,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      l.cfg.MaxAge,
		AllowDirect: true,
	})
	if err != nil {
		return fmt.Errorf("natslog: stream %s: %w", l.cfg.DeadStream, unavailable(err))
	}
	return nil
}

// Close drains nothing: Append has returned for every acknowledged
// submission, and the rest were never acknowledged to a client. It returns
// once the client's callbacks have run, so nothing logs after it. It is
// safe to call more than once.
func (l *Log) Close() error {
	l.closer.Do(func() {
		l.nc.Close()
		select {
		case <-l.closed:
		case <-time.After(5 * time.Second):
		}
	})
	return nil
}

// Ping reports whether JetStream answers.
func (l *Log) Ping(ctx context.Context) error {
	if _, err := l.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("natslog: ping: %w", unavailable(err))
	}
	return nil
}

// Flush waits until the server has received everything sent so far, such
// as acknowledgements, before a worker stops.
func (l *Log) Flush(ctx context.Context) error { return l.nc.FlushWithContext(ctx) }

// Streams names the streams the log keeps: the submissions and the dead
// letters workers could not store.
func (l *Log) Streams() []string { return []string{l.cfg.Stream, l.cfg.DeadStream} }
