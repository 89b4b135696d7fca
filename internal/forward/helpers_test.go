package forward_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/forward/forwardtest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/memlog"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	measurementID = "G-TEST12345"
	apiSecret     = "test-api-secret-value"
)

var webhookSecret = []byte("0123456789abcdef0123456789abcdef-webhook")

// installation returns a version-4 UUID that differs by n.
func installation(n int) string {
	return fmt.Sprintf("6f1c1f1e-8a7b-4c55-9d1e-%012x", n)
}

// userCount is a user_count event as an agent sends it.
func userCount(id string, at time.Time, extra map[string]any) provision.Event {
	f := map[string]any{
		"software.name":      "Secure Connection",
		"software.version":   "5.14.0.1234",
		"os.version":         "11 23H2",
		"os.update_packages": []any{"KB5034441", "KB5034763"},
	}
	for k, v := range extra {
		f[k] = v
	}
	return provision.Event{ID: id, Type: forward.EventType, Time: at, Fields: f}
}

// submit validates a batch as the server does and appends what it accepts.
// Event ids are made unique to the batch, as an agent's are: a log stores
// an event id once.
func submit(t testing.TB, m *manifest.Manifest, log *memlog.Log, inst, region string, received time.Time, events ...provision.Event) {
	t.Helper()
	id := fmt.Sprintf("b-%s-%d", inst[len(inst)-4:], received.UnixNano())
	events = slices.Clone(events)
	for i := range events {
		events[i].ID = id + "-" + events[i].ID
	}
	b := provision.Batch{ID: id, InstallationID: inst, Region: region,
		ManifestVersion: m.Version, SentAt: received, Events: events}
	if v := m.CheckBatch(&b); len(v) > 0 {
		t.Fatalf("test batch is not valid: %v", v)
	}
	s := &provision.Submission{BatchID: b.ID, InstallationID: inst, Region: region, ManifestVersion: m.Version,
		ReceivedAt: received, Events: events, Response: []byte(`{}`)}
	if _, _, err := log.Append(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// rig is a log, its state and the two forwarders against local peers.
type rig struct {
	m       *manifest.Manifest
	log     *memlog.Log
	state   *forwardtest.State
	supp    *forwardtest.Suppressed
	ga      *forwardtest.GA4Server
	tp      *forwardtest.Receiver
	gaFwd   *forward.Forwarder
	tpFwd   *forward.Forwarder
	tpSend  *forward.Webhook
	reg     *prometheus.Registry
	metrics *forward.Metrics
	now     time.Time
}

func newRig(t *testing.T, m *manifest.Manifest, now time.Time) *rig {
	t.Helper()
	r := &rig{m: m, log: memlog.New(), state: forwardtest.NewState(), supp: &forwardtest.Suppressed{}, now: now,
		reg: prometheus.NewRegistry()}
	r.ga = forwardtest.NewGA4Server(t, measurementID, apiSecret)
	r.ga.Now = func() time.Time { return r.now }
	r.tp = forwardtest.NewReceiver(t, webhookSecret)
	r.tp.Now = func() time.Time { return r.now }
	var err error
	if r.metrics, err = forward.NewMetrics(r.reg); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return r.now }
	gaClient, err := forward.NewHTTPClient(forwardtest.CAFile(t, r.ga.Server), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ga, err := forward.NewGA4(forward.GA4Config{MeasurementID: measurementID, APISecret: apiSecret, Endpoint: r.ga.Endpoint(), Client: gaClient, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	tpClient, err := forward.NewHTTPClient(forwardtest.CAFile(t, r.tp.Server), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := forward.NewWebhook(forward.WebhookConfig{URL: r.tp.URL + "/counts", Secret: webhookSecret, Client: tpClient, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	r.gaFwd = r.forwarder(t, ga)
	r.tpFwd = r.forwarder(t, tp)
	r.tpSend = tp
	t.Cleanup(func() { gaClient.CloseIdleConnections(); tpClient.CloseIdleConnections() })
	return r
}

func (r *rig) tpSender(*testing.T) forward.Sender { return r.tpSend }

func (r *rig) forwarder(t *testing.T, s forward.Sender) *forward.Forwarder {
	f, err := forward.New(forward.Options{
		Manifest: r.m, Log: r.log, Checkpoints: r.log, State: r.state, Suppressor: r.supp, Sender: s,
		Retry:     forward.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
		BatchSize: 7, Metrics: r.metrics, Now: func() time.Time { return r.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// drain steps both forwarders until they have read the whole log.
func (r *rig) drain(t *testing.T) {
	t.Helper()
	for _, f := range []*forward.Forwarder{r.gaFwd, r.tpFwd} {
		for {
			n, err := f.Step(context.Background())
			if err != nil {
				t.Fatalf("%s: %v", f.Recipient(), err)
			}
			if n == 0 {
				break
			}
		}
	}
}

func metricValue(t *testing.T, reg *prometheus.Registry, name, recipient string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "recipient" && l.GetValue() == recipient {
					switch {
					case m.Counter != nil:
						return m.Counter.GetValue()
					case m.Gauge != nil:
						return m.Gauge.GetValue()
					}
				}
			}
		}
	}
	t.Fatalf("metric %s{recipient=%q} not found", name, recipient)
	return 0
}
