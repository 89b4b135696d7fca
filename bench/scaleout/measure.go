package main

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provisionhq/provision/internal/natslog"
)

// observe opens what a run watches the workers through: the stream's
// store consumer, and a connection to PostgreSQL for the lag. closeAll
// releases both.
func observe(ctx context.Context, lc natslog.Config, pgURL string) (cons *natslog.Consumer, conn *pgx.Conn, closeAll func(), err error) {
	l, err := natslog.Open(ctx, lc)
	if err != nil {
		return nil, nil, nil, err
	}
	if cons, err = l.Consumer(ctx, natslog.DefaultConsumerConfig("store")); err != nil {
		l.Close()
		return nil, nil, nil, err
	}
	if conn, err = pgx.Connect(ctx, pgURL); err != nil {
		l.Close()
		return nil, nil, nil, err
	}
	return cons, conn, func() { conn.Close(context.Background()); l.Close() }, nil
}

// lagSampler samples, every 250 ms while the upload runs, how long ago the
// newest stored batch was received.
type lagSampler struct {
	stop, done chan struct{}
	lags       []time.Duration
}

func sampleLag(ctx context.Context, conn *pgx.Conn, schema string) *lagSampler {
	s := &lagSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
			var lag float64
			err := conn.QueryRow(ctx, `SELECT extract(epoch FROM clock_timestamp() - e.received_at)
				FROM `+schema+`.log_batches e WHERE e.seq_end = (SELECT seq FROM `+schema+`.log_head)`).Scan(&lag)
			if err == nil {
				s.lags = append(s.lags, time.Duration(lag*float64(time.Second)))
			}
		}
	}()
	return s
}

// Stop ends the sampling and returns the samples, sorted.
func (s *lagSampler) Stop() []time.Duration {
	close(s.stop)
	<-s.done
	slices.Sort(s.lags)
	return s.lags
}

// percentiles returns the median, the 99th percentile and the largest of
// sorted samples, zero when there are none.
func percentiles(sorted []time.Duration) (p50, p99, most time.Duration) {
	if len(sorted) == 0 {
		return 0, 0, 0
	}
	return sorted[len(sorted)/2], sorted[len(sorted)*99/100], sorted[len(sorted)-1]
}

// drain waits until every message of the stream is stored and
// acknowledged, at most 5 minutes, and returns how long it took.
func drain(ctx context.Context, cons *natslog.Consumer) (time.Duration, error) {
	stopped := time.Now()
	for {
		pending, unacked, err := cons.Backlog(ctx)
		if err == nil && pending == 0 && unacked == 0 {
			return time.Since(stopped), nil
		}
		if time.Since(stopped) > 5*time.Minute || ctx.Err() != nil {
			return 0, errors.New("workers did not drain the stream in 5 minutes")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
