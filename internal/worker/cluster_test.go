package worker_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/provisionhq/provision/internal/natslog/natstest"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
)

// streamLeader names the server that leads the stream now.
func streamLeader(t *testing.T, urls, stream string) string {
	t.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Cluster == nil || len(info.Cluster.Replicas) != 2 {
		t.Fatalf("stream is not replicated three times: %+v", info.Cluster)
	}
	return info.Cluster.Leader
}

// A three-node JetStream cluster with an R3 stream loses the stream's leader
// during a sustained upload; the node comes back. Every acknowledged event
// ends up in PostgreSQL exactly once.
func TestNodeLossInThreeNodeCluster(t *testing.T) {
	pgtest.URL(t) // skip or fail early without PostgreSQL
	servers := natstest.Cluster(t, 3)
	urls := natstest.URLs(servers)
	r := newRig(t, urls)
	r.log.Replicas = 3
	r.log.PublishTimeout = 2 * time.Second
	r.cons.AckWait = 3 * time.Second
	pub := r.openLog()
	w1, w2 := r.startWorker(nil), r.startWorker(nil)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	loadDone := make(chan *load)
	go func() { loadDone <- runLoad(ctx, pub, 2, 1<<30, "node-loss") }()

	time.Sleep(time.Second)
	leader := streamLeader(t, urls, r.log.Stream)
	var victim *natstest.Server
	for i, s := range servers {
		if s.Name() == leader {
			victim = servers[i]
		}
	}
	if victim == nil {
		t.Fatalf("no server named %q", leader)
	}
	victim.Stop()
	t.Logf("stopped %s, the stream leader", leader)
	time.Sleep(3 * time.Second)
	victim.Start(t)
	t.Logf("restarted %s", leader)
	time.Sleep(2 * time.Second)
	cancel()
	ld := <-loadDone

	waitDrained(t, w1, 60*time.Second)
	got := waitStored(t, r.store, ld, 30*time.Second)
	if len(ld.acked) == 0 {
		t.Fatal("nothing was acknowledged")
	}
	t.Logf("acknowledged %d events in %d batches, %d unavailable answers; %d stored; workers %+v %+v",
		len(ld.acked), ld.sent.Load(), ld.unav.Load(), len(got), w1.w.Stats(), w2.w.Stats())
	if newLeader := streamLeader(t, urls, r.log.Stream); newLeader == "" {
		t.Fatal("stream has no leader after the restart")
	}
}
