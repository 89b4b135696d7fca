package worker_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
	"github.com/provisionhq/provision/internal/natslog"
	"github.com/provisionhq/provision/internal/natslog/natstest"
	"github.com/provisionhq/provision/internal/postgres"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"github.com/provisionhq/provision/internal/worker"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rig is one test's log and store; each worker gets its own connections,
// as separate processes would have.
type rig struct {
	t     *testing.T
	log   natslog.Config
	cons  natslog.ConsumerConfig
	store postgres.Config
}

func newRig(t *testing.T, natsURL string) *rig {
	cons := natslog.DefaultConsumerConfig("store")
	cons.AckWait = 2 * time.Second
	cons.MaxDeliver = 3
	return &rig{t: t, log: natstest.Config(t, natsURL), cons: cons, store: pgtest.Config(t)}
}

func (r *rig) openLog() *natslog.Log {
	r.t.Helper()
	var l *natslog.Log
	var err error
	// A cluster may still be electing leaders.
	for range 100 {
		if l, err = natslog.Open(context.Background(), r.log); err == nil {
			r.t.Cleanup(func() { _ = l.Close() })
			return l
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.t.Fatal(err)
	return nil
}

func (r *rig) openStore() *postgres.Store {
	r.t.Helper()
	s, err := postgres.Open(context.Background(), r.store)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { _ = s.Close() })
	return s
}

// running is a worker with its own connections and a way to stop it.
type running struct {
	w      *worker.Worker
	log    *natslog.Log
	cons   *natslog.Consumer
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *rig) startWorker(store worker.Store) *running {
	r.t.Helper()
	l := r.openLog()
	if store == nil {
		store = r.openStore()
	}
	cons, err := l.Consumer(context.Background(), r.cons)
	if err != nil {
		r.t.Fatal(err)
	}
	cfg := worker.DefaultConfig()
	cfg.Batch = 200
	cfg.FetchWait = 200 * time.Millisecond
	w, err := worker.New(cons, store, cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{w: w, log: l, cons: cons, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(run.done); _ = w.Run(ctx) }()
	r.t.Cleanup(run.stop)
	return run
}

// waitDrained waits until the worker's consumer has nothing pending or
// unacknowledged.
func waitDrained(t *testing.T, w *running, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		pending, unacked, err := w.cons.Backlog(context.Background())
		if err == nil && pending == 0 && unacked == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backlog not drained in %v: %d pending, %d unacknowledged, %v", within, pending, unacked, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *running) stop() {
	w.cancel()
	<-w.done
	_ = w.log.Close()
}

// load appends submissions from several goroutines until stop is closed or
// max batches went out, retrying unavailable answers as an agent does, and
// records the event ids of every acknowledged batch.
type load struct {
	mu    sync.Mutex
	acked map[string]bool
	sent  atomic.Int64
	unav  atomic.Int64
}

func runLoad(ctx context.Context, l *natslog.Log, producers, max int, prefix string) *load {
	ld := &load{acked: map[string]bool{}}
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < max && ctx.Err() == nil; i++ {
				batch := fmt.Sprintf("%s-%d-%d", prefix, p, i)
				sub := submission(batch, 5)
				for ctx.Err() == nil {
					_, _, err := l.Append(ctx, sub)
					if err == nil {
						ld.mu.Lock()
						for _, ev := range sub.Events {
							ld.acked[ev.ID] = true
						}
						ld.mu.Unlock()
						ld.sent.Add(1)
						break
					}
					ld.unav.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
				// Every tenth batch is sent again, as after a lost answer.
				if i%10 == 0 {
					_, _, _ = l.Append(ctx, sub)
				}
			}
		}()
	}
	wg.Wait()
	return ld
}

func submission(batch string, events int) *provision.Submission {
	now := time.Now().UTC()
	s := &provision.Submission{
		BatchID: batch, InstallationID: "inst-" + batch, Region: "eu", ManifestVersion: "1",
		ReceivedAt: now, Response: []byte(`{"batch_id":"` + batch + `"}`),
	}
	for i := range events {
		s.Events = append(s.Events, provision.Event{
			ID: fmt.Sprintf("%s/%d", batch, i), Type: "software", Time: now,
			Fields: map[string]any{"software.name": "vpn", "software.version": "1.2.3"},
		})
	}
	return s
}

// storedIDs returns how often each event id is in the log, read through a
// store of its own.
func storedIDs(t *testing.T, cfg postgres.Config) map[string]int {
	t.Helper()
	ctx := context.Background()
	s, err := postgres.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out := map[string]int{}
	var after int64
	for {
		recs, err := s.Read(ctx, after, 5000)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for _, r := range recs {
			out[r.Event.ID]++
		}
		after = recs[len(recs)-1].Seq
	}
}

// waitStored waits until every acknowledged event is stored, then checks
// that nothing is stored twice and nothing unacknowledged slipped in beyond
// batches whose answer was lost.
func waitStored(t *testing.T, cfg postgres.Config, ld *load, within time.Duration) map[string]int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := storedIDs(t, cfg)
		missing := 0
		for id := range ld.acked {
			if got[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			for id, n := range got {
				if n != 1 {
					t.Fatalf("event %s stored %d times", id, n)
				}
			}
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged events not stored after %v", missing, len(ld.acked), within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestWorkersShareTheWorkAndStoreEachEventOnce(t *testing.T) {
	t.Parallel()
	r := newRig(t, natstest.URL(t))
	pub := r.openLog()
	w1, w2 := r.startWorker(nil), r.startWorker(nil)
	ld := runLoad(context.Background(), pub, 4, 100, "share")
	got := waitStored(t, r.store, ld, 60*time.Second)
	if len(got) != len(ld.acked) || len(got) != 4*100*5 {
		t.Fatalf("stored %d events, acknowledged %d", len(got), len(ld.acked))
	}
	s1, s2 := w1.w.Stats(), w2.w.Stats()
	if s1.Messages == 0 || s2.Messages == 0 {
		t.Errorf("work not shared: %+v / %+v", s1, s2)
	}
	if s1.Events+s2.Events != int64(len(got)) {
		t.Errorf("workers report %d events, table has %d", s1.Events+s2.Events, len(got))
	}
}

// killer stands between a worker and the store and kills the worker at a
// chosen point of its first write: before the commit or after it, before
// the acknowledgement.
type killer struct {
	store       worker.Store
	afterCommit bool
	kill        func()
	once        sync.Once
	killed      chan struct{}
}

func (k *killer) WriteEncoded(ctx context.Context, subs []*provision.Submission, enc []*batchcodec.Encoded) ([]postgres.Outcome, error) {
	var out []postgres.Outcome
	var err error
	if k.afterCommit {
		out, err = k.store.WriteEncoded(ctx, subs, enc)
	}
	k.once.Do(func() { k.kill(); close(k.killed) })
	<-ctx.Done()
	_ = out
	if err != nil {
		return nil, err
	}
	return nil, ctx.Err()
}

func TestWorkerKilledMidBatchLosesAndDuplicatesNothing(t *testing.T) {
	t.Parallel()
	for _, afterCommit := range []bool{false, true} {
		t.Run(fmt.Sprint("after_commit=", afterCommit), func(t *testing.T) {
			t.Parallel()
			r := newRig(t, natstest.URL(t))
			pub := r.openLog()
			ld := runLoad(context.Background(), pub, 2, 50, "kill")

			k := &killer{store: r.openStore(), afterCommit: afterCommit, killed: make(chan struct{})}
			victimReady := make(chan *running, 1)
			k.kill = func() {
				// As a SIGKILL would: the connection goes, nothing is acknowledged.
				victim := <-victimReady
				_ = victim.log.Close()
				victim.cancel()
			}
			victim := r.startWorker(k)
			victimReady <- victim
			select {
			case <-k.killed:
			case <-time.After(30 * time.Second):
				t.Fatal("the worker never wrote")
			}
			<-victim.done
			if victim.w.Stats().Messages != 0 {
				t.Fatal("the killed worker acknowledged messages")
			}
			survivor := r.startWorker(nil)
			waitDrained(t, survivor, 60*time.Second)
			waitStored(t, r.store, ld, 10*time.Second)
			st := survivor.w.Stats()
			if st.Messages != ld.sent.Load() {
				t.Errorf("survivor acknowledged %d messages, %d were sent: %+v", st.Messages, ld.sent.Load(), st)
			}
			if afterCommit && st.Duplicates != st.Messages {
				t.Errorf("after a commit every redelivered batch is a duplicate: %+v", st)
			}
			if !afterCommit && st.Duplicates != 0 {
				t.Errorf("nothing was committed, yet duplicates: %+v", st)
			}
		})
	}
}

// PostgreSQL connections are cut again and again under load; workers keep
// the messages, retry and catch up.
func TestWorkersCatchUpAfterPostgresOutage(t *testing.T) {
	t.Parallel()
	r := newRig(t, natstest.URL(t))
	pub := r.openLog()
	w1, w2 := r.startWorker(nil), r.startWorker(nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loadDone := make(chan *load)
	go func() { loadDone <- runLoad(ctx, pub, 2, 1<<30, "outage") }()

	admin, err := pgx.Connect(context.Background(), r.store.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var terminated int64
	for range 20 {
		time.Sleep(150 * time.Millisecond)
		var n int64
		if err := admin.QueryRow(context.Background(),
			`SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()) t`,
			r.store.ApplicationName).Scan(&n); err != nil {
			t.Fatal(err)
		}
		terminated += n
	}
	cancel()
	ld := <-loadDone
	if terminated == 0 {
		t.Fatal("no worker connection was terminated")
	}
	waitStored(t, r.store, ld, 60*time.Second)
	if s1, s2 := w1.w.Stats(), w2.w.Stats(); s1.StoreRetries+s2.StoreRetries == 0 {
		t.Errorf("no write was retried after %d terminations: %+v %+v", terminated, s1, s2)
	}
	t.Logf("terminated %d connections, %d events stored", terminated, len(ld.acked))
}

// A submission PostgreSQL refuses (a NUL character text cannot hold) is
// tried MaxDeliver times, then moved to the dead-letter stream; the rest of
// its batch is stored.
func TestPoisonMessageGoesToDeadLetters(t *testing.T) {
	t.Parallel()
	r := newRig(t, natstest.URL(t))
	pub := r.openLog()
	ctx := context.Background()
	for i := range 5 {
		sub := submission(fmt.Sprint("p", i), 2)
		if i == 2 {
			sub.Region = "e\u0000u"
		}
		if _, _, err := pub.Append(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	w := r.startWorker(nil)
	deadline := time.Now().Add(60 * time.Second)
	for w.w.Stats().DeadLettered == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("poison message not dead-lettered: %+v", w.w.Stats())
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := storedIDs(t, r.store)
	if len(got) != 8 || got["p2/0"] != 0 || got["p2/1"] != 0 {
		t.Fatalf("stored %v", got)
	}
	if st := w.w.Stats(); st.Messages != 4 {
		t.Fatalf("stats %+v", st)
	}
}

func TestConfigValidate(t *testing.T) {
	c := worker.DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.Batch = 0
	c.RetryMax = 0
	if err := c.Validate(); err == nil {
		t.Fatal("bad config accepted")
	}
	if _, err := worker.New(nil, nil, c); !errors.Is(err, err) || err == nil {
		t.Fatal("New accepted a bad config")
	}
}
