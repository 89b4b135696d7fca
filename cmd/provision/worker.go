package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/provisionhq/provision/internal/natslog"
	"github.com/provisionhq/provision/internal/postgres"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/worker"
)

func newWorkerCmd(e *env) *cobra.Command {
	var (
		so          scaleOutFlags
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
			logger := slog.New(slog.NewTextHandler(e.stderr, nil))
			if pgAppSuffix != "" {
				so.applicationTag += "-" + pgAppSuffix
			}
			nc, err := so.natsConfig(logger)
			if err != nil {
				return err
			}
			pc, err := so.postgresConfig(logger)
			if err != nil {
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
			return runWorkers(cmd.Context(), logger, nc, pc, cc, wc, loops, statsEvery, rollupEvery)
		},
	}
	so.register(cmd, "worker")
	cmd.Flags().StringVar(&durable, "durable", "store", "durable consumer `NAME` shared by the workers of one job")
	cmd.Flags().IntVar(&batch, "batch", worker.DefaultConfig().Batch, "most submissions written in one transaction")
	cmd.Flags().IntVar(&loops, "concurrency", 1, "fetch-and-write loops in this process")
	cmd.Flags().DurationVar(&ackWait, "ack-wait", natslog.DefaultConsumerConfig("").AckWait, "time before an unacknowledged submission goes to another worker")
	cmd.Flags().IntVar(&maxDeliver, "max-deliver", natslog.DefaultConsumerConfig("").MaxDeliver, "attempts before a submission goes to the dead-letter stream")
	cmd.Flags().DurationVar(&statsEvery, "stats-interval", 30*time.Second, "how often to log progress (0: never)")
	cmd.Flags().DurationVar(&rollupEvery, "rollup-interval", time.Second, "how often to fold newly stored events into the rollups (0: never)")
	cmd.Flags().StringVar(&pgAppSuffix, "instance", "", "suffix of the connection names, to tell workers apart in pg_stat_activity")
	return cmd
}

func runWorkers(ctx context.Context, logger *slog.Logger, nc natslog.Config, pc postgres.Config,
	cc natslog.ConsumerConfig, wc worker.Config, loops int, statsEvery, rollupEvery time.Duration) error {
	l, err := natslog.Open(ctx, nc)
	if err != nil {
		return err
	}
	defer l.Close()
	store, err := postgres.Open(ctx, pc)
	if err != nil {
		return err
	}
	defer store.Close()
	cons, err := l.Consumer(ctx, cc)
	if err != nil {
		return err
	}
	workers := make([]*worker.Worker, loops)
	for i := range workers {
		if workers[i], err = worker.New(cons, store, wc); err != nil {
			return err
		}
	}
	logger.Info("worker started", "durable", cc.Durable, "concurrency", loops, "batch", wc.Batch)
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() { defer wg.Done(); _ = w.Run(ctx) }()
	}
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
	if rollupEvery > 0 {
		// Rollups follow the store's log, whose sequence numbers become
		// visible in commit order. Every worker runs an updater; their
		// applies move one shared checkpoint by compare-and-swap.
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := &rollup.Updater{Log: store, Store: store.Rollups(), Logger: logger}
			tick := time.NewTicker(rollupEvery)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if st, err := u.Update(ctx); err != nil && ctx.Err() == nil {
					logger.Warn("rollup update failed", "err", err)
				} else if st.Records > 0 {
					logger.Debug("rollups updated", "records", st.Records, "through", st.Through)
				}
			}
		}()
	}
	if statsEvery > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(statsEvery)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
					s := total()
					logger.Info("progress", "messages", s.Messages, "events", s.Events, "duplicates", s.Duplicates,
						"dead_lettered", s.DeadLettered, "store_retries", s.StoreRetries)
				}
			}
		}()
	}
	wg.Wait()
	// Acknowledgements already sent should reach the server before exit;
	// any that do not are redelivered and skipped.
	fctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = l.Flush(fctx)
	s := total()
	logger.Info("worker stopped", "messages", s.Messages, "events", s.Events, "duplicates", s.Duplicates,
		"dead_lettered", s.DeadLettered)
	return nil
}
