package ingest_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/provisionhq/provision/internal/ingest"
	"github.com/provisionhq/provision/internal/ingest/attack"
	"github.com/provisionhq/provision/internal/ingest/ingesttest"
	"github.com/provisionhq/provision/internal/wire"
)

// memoryLimit is the server's configured limit in the suite, the one
// `provision serve` sets (GOMEMLIMIT 400 MiB); the whole test process,
// clients included, must stay under it.
const memoryLimit = 400 << 20

// TestAttackSuite reproduces each attack of the hostile-clients issue
// against the real handler over SQLite and TLS, and asserts outcomes
// (counts, codes, bytes); timings are printed, never asserted.
func TestAttackSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("attack suite: not in -short")
	}
	ctx := t.Context()
	l := ingest.DefaultLimits()
	rig, err := attack.NewRig(ctx, t.TempDir(), l)
	if err != nil {
		t.Fatal(err)
	}
	defer rig.Close()
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(memoryLimit))

	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(7, 7))
	seq := 0
	batch := func(prefix string, n int) []byte {
		mu.Lock()
		defer mu.Unlock()
		seq++
		return ingesttest.JSON(ingesttest.Batch(rng, fmt.Sprintf("%s-%d", prefix, seq), n, time.Now()))
	}
	stored := 0 // events the suite expects in the store

	t.Run("slow bodies", func(t *testing.T) {
		conns, streams := 400, 100 // the 500 slow requests
		if raceEnabled {
			conns, streams = 60, 40
		}
		const workers, uploads = 4, 15
		normal := func(i int) []byte { return ingesttest.Gzip(batch("normal", 20)) }
		start := time.Now()
		base := attack.Normal(ctx, rig, workers, uploads, normal)
		t.Logf("without attack: %d/%d uploads in %v", base.OK, base.Total, time.Since(start))

		actx, stop := context.WithCancel(ctx)
		slowDone := make(chan struct{})
		var res attack.SlowResult
		go func() { defer close(slowDone); attack.SlowLoris(actx, rig, conns, streams, time.Second, &res) }()
		// All slow requests open before the normal clients start, however
		// slow the machine is (bounded: a minute).
		for deadline := time.Now().Add(time.Minute); res.Snapshot().Opened < int64(conns+streams) && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		start = time.Now()
		under := attack.Normal(ctx, rig, workers, uploads, normal)
		t.Logf("under %d slow connections and %d slow HTTP/2 streams: %d/%d uploads in %v, failures %v",
			conns, streams, under.OK, under.Total, time.Since(start), under.Codes)
		// Keep the attack on until the server has cut off as many slow
		// requests as were open at once (bounded: a minute), so it has to
		// cut them, not just outlast the test.
		for deadline := time.Now().Add(time.Minute); res.Snapshot().CutOff < int64(conns+streams) && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		stop()
		<-slowDone
		slow := res.Snapshot()
		t.Logf("slow requests: %d opened, %d cut off, %d completed", slow.Opened, slow.CutOff, slow.Completed)

		if under.OK*100 < base.OK*95 {
			t.Errorf("normal clients kept %d of %d successful uploads under attack, want ≥ 95%%", under.OK, base.OK)
		}
		if slow.Opened < int64(conns+streams) || slow.CutOff < int64(conns+streams) || slow.Completed != 0 {
			t.Errorf("slow requests: %+v; want %d opened and cut off, none completed", slow, conns+streams)
		}
		stored += int(base.OK+under.OK) * 20
	})

	t.Run("amplification", func(t *testing.T) {
		body := attack.AmplificationBody(2_500_000) // 7.5 MB of {}
		client := rig.Client(true)
		mem := attack.SampleMemory(5 * time.Millisecond)
		one := attack.Post(ctx, client, rig.HTTP.URL, "/v1/submit", "192.0.2.50", body, "")
		mem.Stop()
		t.Logf("one amplification request: %d %s; peak RSS %d MiB, peak heap %d MiB", one.Status, one.Code, mem.PeakRSS>>20, mem.PeakHeap>>20)
		if one.Status != 400 || one.Code != wire.CodeTooManyEvents {
			t.Errorf("amplification = %d %s, want 400 too_many_events", one.Status, one.Code)
		}
		peak := mem

		gz := ingesttest.Gzip(body)
		mem = attack.SampleMemory(5 * time.Millisecond)
		answers := make([]attack.Answer, 8)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Go(func() {
				if i%2 == 0 {
					answers[i] = attack.Post(ctx, client, rig.HTTP.URL, "/v1/submit", fmt.Sprintf("192.0.2.%d", 60+i), body, "")
				} else {
					answers[i] = attack.Post(ctx, client, rig.HTTP.URL, "/v1/submit", fmt.Sprintf("192.0.2.%d", 60+i), gz, "gzip")
				}
			})
		}
		wg.Wait()
		mem.Stop()
		t.Logf("8 in parallel (plain and gzip): %v; peak RSS %d MiB, peak heap %d MiB", answers, mem.PeakRSS>>20, mem.PeakHeap>>20)
		for i, a := range answers {
			ok := a.Status == 400 && a.Code == wire.CodeTooManyEvents ||
				a.Status == 413 && a.Code == wire.CodeCompressionRatio ||
				a.Status == 503 && a.Code == wire.CodeOverloaded // the budget is spent: retry later
			if !ok {
				t.Errorf("request %d = %d %s", i, a.Status, a.Code)
			}
		}
		for _, m := range []*attack.Memory{peak, mem} {
			rss := m.PeakRSS
			if raceEnabled {
				rss = 0 // the race detector's shadow memory is not the server's
			}
			if rss > memoryLimit || m.PeakHeap > memoryLimit {
				t.Errorf("peak RSS %d, heap %d: over the %d limit", m.PeakRSS, m.PeakHeap, memoryLimit)
			}
		}
	})

	t.Run("malformed", func(t *testing.T) {
		client := rig.Client(false)
		for i, tc := range ingesttest.MalformedCases() {
			valid := batch(fmt.Sprintf("malformed%d", i), 8)
			a := attack.Post(ctx, client, rig.HTTP.URL, "/v1/submit", "192.0.2.70", ingesttest.Gzip(tc.Body(valid)), "gzip")
			if tc.Code != "" {
				if a.Status != 400 || a.Code != tc.Code {
					t.Errorf("%s: %d %s, want 400 %s", tc.Name, a.Status, a.Code, tc.Code)
				}
				continue
			}
			if a.Status != 200 {
				t.Errorf("%s: %d %s, want 200 with one rejection", tc.Name, a.Status, a.Code)
				continue
			}
			stored += a.Accepted
		}
		recs, err := rig.Store.Read(ctx, 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != stored {
			t.Errorf("%d events stored, want %d: the normal uploads' and the valid events of partly malformed batches", len(recs), stored)
		}
		for _, r := range recs {
			if r.Event.ID == "" || r.Event.Time.IsZero() || slices.Contains([]string{"user.email", "x", "ip"}, firstUndeclared(r.Event.Fields)) {
				t.Errorf("malformed event stored: %+v", r.Event)
			}
		}
	})

	t.Run("one client's rate", func(t *testing.T) {
		// A rig of its own whose clock moves only when told: what the
		// token buckets allow is then exact, whatever the scheduler does.
		clock := &manualClock{t: time.Now()}
		rrig, err := attack.NewRigClock(ctx, t.TempDir(), l, clock.Now)
		if err != nil {
			t.Fatal(err)
		}
		defer rrig.Close()
		routes := []struct {
			name, path, addr string
			body             func(int) []byte
			rate             float64
			burst            int
		}{
			{"submit", "/v1/submit", "192.0.2.80", func(int) []byte { return batch("flood", 1) }, float64(l.SubmitRate), l.SubmitBurst},
			{"deletion", "/v1/deletion", "192.0.2.81", attack.DeletionBody, float64(l.DeletionRate), l.DeletionBurst},
		}
		const later = 3 * time.Second
		flood := func(phase string, want func(rate float64, burst int) int) {
			for _, r := range routes {
				n := r.burst + 20
				res := attack.FloodN(ctx, rrig, r.path, r.addr, 8, n, r.body)
				w := want(r.rate, r.burst)
				if res.Answered != int64(n) || res.Allowed != int64(w) || res.Limited != int64(n-w) {
					t.Errorf("%s, %s: %d answered, %d allowed (%v), %d limited; want %d answered, %d allowed by a token bucket of %v/s, burst %d",
						r.name, phase, res.Answered, res.Allowed, res.Answers, res.Limited, n, w, r.rate, r.burst)
				}
			}
		}
		// The clock stands still: the full bucket and nothing more.
		flood("at once", func(_ float64, burst int) int { return burst })
		clock.Advance(later)
		// The empty bucket has refilled by rate × the time that passed.
		flood(fmt.Sprintf("%v later", later), func(rate float64, burst int) int { return min(burst, int(rate*later.Seconds())) })
	})

	if r := attack.Post(ctx, rig.Client(false), rig.HTTP.URL, "/v1/submit", "192.0.2.90", ingesttest.Gzip(batch("after", 3)), "gzip"); r.Status != http.StatusOK {
		t.Errorf("a valid upload after the attacks = %d %s", r.Status, r.Code)
	}
	resp, err := rig.Client(false).Get(rig.HTTP.URL + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("/readyz after the attacks: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

func firstUndeclared(fields map[string]any) string {
	for k := range fields {
		if k == "user.email" || k == "x" || k == "ip" {
			return k
		}
	}
	return ""
}

// manualClock is a clock that moves only by Advance.
type manualClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}
