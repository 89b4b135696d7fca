package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/natslog"
	"github.com/provisionhq/provision/internal/server"
	"github.com/provisionhq/provision/internal/worker"
)

func newWorkerCmd(e *env) *cobra.Command {
	var (
		so          storeFlags
		logs        logFlags
		durable     string
		batch       int
		loops       int
		ackWait     time.Duration
		maxDeliver  int
		statsEvery  time.Duration
		rollupEvery time.Duration
		pgAppSuffix string
	)
	cmd := &cobra.Command{
		Use:   "worker --log nats://HOST:4222 --store postgres://…",
		Short: "Move accepted submissions from the JetStream log into PostgreSQL",
		Long: `worker consumes the submissions stream with a durable pull consumer shared
by every worker of the same --durable name, writes them to PostgreSQL in
batches with COPY, and acknowledges only after the commit; it then folds the
stored events into the rollups. Run as many as the
database takes; a worker killed at any point loses and duplicates nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if so.log == "" || so.store == "" {
				return errors.New("worker needs --log nats://… and --store postgres://…")
			}
			logger, err := logs.logger(e.stderr)
			if err != nil {
				return err
			}
			if pgAppSuffix != "" {
				so.applicationTag += "-" + pgAppSuffix
			}
			if engine, _, err := backend.Parse(so.store); err != nil {
				return err
			} else if engine != backend.Postgres {
				return errors.New("--store: the worker writes to PostgreSQL: want a postgres:// URL")
			}
			opts := so.options(so.store, false, logger)
			if _, err := opts.NATSConfig(); err != nil {
				return err
			}
			cc := natslog.DefaultConsumerConfig(durable)
			cc.AckWait, cc.MaxDeliver = ackWait, maxDeliver
			wc := worker.DefaultConfig()
			wc.Batch, wc.Logger = batch, logger
			if err := errors.Join(cc.Validate(), wc.Validate()); err != nil {
				return err
			}
			if loops < 1 || loops > 64 {
				return fmt.Errorf("--concurrency: %d is outside 1..64", loops)
			}
			b, err := backend.Open(cmd.Context(), opts)
			if err != nil {
				return err
			}
			defer b.Close()
			return runWorkers(cmd.Context(), logger, b, cc, wc, loops, statsEvery, rollupEvery)
		},
	}
	so.registerStore(cmd, "worker")
	so.registerLog(cmd)
	logs.register(cmd, "json")
	cmd.Flags().StringVar(&durable, "durable", "store", "durable consumer `NAME` shared by the workers of one job")
	cmd.Flags().IntVar(&batch, "batch", worker.DefaultConfig().Batch, "most submissions written in one transaction")
	cmd.Flags().IntVar(&loops, "concurrency", worker.DefaultLoops, "fetch-and-write loops in this process")
	cmd.Flags().DurationVar(&ackWait, "ack-wait", natslog.DefaultConsumerConfig("").AckWait, "time before an unacknowledged submission goes to another worker")
	cmd.Flags().IntVar(&maxDeliver, "max-deliver", natslog.DefaultConsumerConfig("").MaxDeliver, "attempts before a submission goes to the dead-letter stream")
	cmd.Flags().DurationVar(&statsEvery, "stats-interval", 30*time.Second, "how often to log progress (0: never)")
	cmd.Flags().DurationVar(&rollupEvery, "rollup-interval", time.Second, "how often to fold newly stored events into the rollups (0: never)")
	cmd.Flags().StringVar(&pgAppSuffix, "instance", "", "suffix of the connection names, to tell workers apart in pg_stat_activity")
	return cmd
}

// runWorkers runs the fetch-and-write loops, the rollup job and the
// progress log in one group until ctx ends or one of them fails.
func runWorkers(ctx context.Context, logger *slog.Logger, b *backend.Backend,
	cc natslog.ConsumerConfig, wc worker.Config, loops int, statsEvery, rollupEvery time.Duration) error {
	cons, err := b.NATS.Consumer(ctx, cc)
	if err != nil {
		return err
	}
	workers := make([]*worker.Worker, loops)
	for i := range workers {
		if workers[i], err = worker.New(cons, b.Postgres, wc); err != nil {
			return err
		}
	}
	logger.Info("worker started", "durable", cc.Durable, "concurrency", loops, "batch", wc.Batch)
	total := func() worker.Stats {
		var t worker.Stats
		for _, w := range workers {
			s := w.Stats()
			t.Messages += s.Messages
			t.Events += s.Events
			t.Duplicates += s.Duplicates
			t.DeadLettered += s.DeadLettered
			t.StoreRetries += s.StoreRetries
		}
		return t
	}
	g, gctx := errgroup.WithContext(ctx)
	for i, w := range workers {
		g.Go(func() error {
			if err := w.Run(gctx); err != nil {
				return fmt.Errorf("worker loop %d: %w", i, err)
			}
			return nil
		})
	}
	if rollupEvery > 0 {
		// Rollups follow the store's log, whose sequence numbers become
		// visible in commit order. Every worker runs the server's rollup
		// job; their applies move one shared checkpoint by compare-and-swap.
		job := server.RollupJob(b, rollupEvery, logger, nil)
		g.Go(func() error {
			if err := job(gctx); err != nil {
				return fmt.Errorf("rollups: %w", err)
			}
			return nil
		})
	}
	if statsEvery > 0 {
		g.Go(func() error {
			tick := time.NewTicker(statsEvery)
			defer tick.Stop()
			for {
				select {
				case <-gctx.Done():
					return nil
				case <-tick.C:
					s := total()
					logger.Info("progress", "messages", s.Messages, "events", s.Events, "duplicates", s.Duplicates,
						"dead_lettered", s.DeadLettered, "store_retries", s.StoreRetries)
				}
			}
		})
	}
	err = g.Wait()
	if err != nil {
		logger.Error("worker failed", "err", err)
	}
	// Acknowledgements already sent should reach the server before exit;
	// any that do not are redelivered and skipped.
	fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if ferr := b.NATS.Flush(fctx); ferr != nil {
		logger.Warn("flushing acknowledgements failed; they will be redelivered and skipped", "err", ferr)
	}
	s := total()
	logger.Info("worker stopped", "messages", s.Messages, "events", s.Events, "duplicates", s.Duplicates,
		"dead_lettered", s.DeadLettered)
	return err
}
