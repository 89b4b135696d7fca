package forward_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/forward/forwardtest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/memlog"
)

func BenchmarkGA4Body(b *testing.B) {
	g, err := forward.NewGA4(forward.GA4Config{MeasurementID: "G-1", APISecret: "s", Now: func() time.Time { return day1 }})
	if err != nil {
		b.Fatal(err)
	}
	kbs := make([]any, 300)
	for i := range kbs {
		kbs[i] = fmt.Sprintf("KB%07d", i)
	}
	c := &forward.Count{Time: day1, Fields: map[string]any{"installation.id": installation(1), "software.name": "Secure Connection",
		"software.version": "5.14.0.1234", "os.version": "11 23H2", "os.update_packages": kbs}}
	for b.Loop() {
		if _, err := g.Body(c); err != nil {
			b.Fatal(err)
		}
	}
}

// nullSender delivers nowhere, so the benchmark measures the forwarder:
// reading the log, selection, suppression and once-per-day checks.
type nullSender struct{}

func (nullSender) Recipient() string                          { return "third_party" }
func (nullSender) Send(context.Context, *forward.Count) error { return nil }

func BenchmarkStep(b *testing.B) {
	m := manifest.Reference()
	log := memlog.New()
	for i := range 2000 {
		at := day1.Add(time.Duration(i) * time.Second)
		submit(b, m, log, installation(i%500), "eu", at, userCount("u", at, nil))
	}
	f, err := forward.New(forward.Options{Manifest: m, Log: log, Checkpoints: log, State: forwardtest.NewState(),
		Suppressor: &forwardtest.Suppressed{}, Sender: nullSender{}, BatchSize: 2000})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_ = log.SetCheckpoint(ctx, f.Name(), 0)
		if n, err := f.Step(ctx); err != nil || n != 2000 {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(2000*b.N)/b.Elapsed().Seconds(), "records/s")
}
