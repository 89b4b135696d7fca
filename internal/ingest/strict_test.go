package ingest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/provisionhq/provision/internal/ingest/ingesttest"
	"github.com/provisionhq/provision/internal/wire"
)

// validBody is a batch as the agent sends it, stamped around fuzzNow.
func validBody(n int) []byte {
	return ingesttest.JSON(ingesttest.Batch(rand.New(rand.NewPCG(5, 6)), "strict", n, fuzzNow))
}

// strictSeeds are the fuzz seeds: a valid batch and each kind of input
// the strict decoder refuses or rejects.
func strictSeeds() [][]byte {
	valid := validBody(3)
	seeds := [][]byte{valid}
	for _, tc := range ingesttest.MalformedCases() {
		seeds = append(seeds, tc.Body(valid))
	}
	return seeds
}

func decodeForTest(t testing.TB, s *Server, body []byte) (*decodedBatch, error) {
	t.Helper()
	res := &reservation{a: s.admit}
	defer res.free()
	b, err := decodeBatch(body, &decodeContext{limits: &s.limits, manifest: s.deps.Manifest, now: fuzzNow, res: res})
	if err != nil {
		return nil, err
	}
	return b, s.checkEnvelope(b, fuzzNow)
}

func TestStrictDecoding(t *testing.T) {
	s := fuzzServer(DefaultLimits())
	valid := validBody(8)
	for _, tc := range ingesttest.MalformedCases() {
		t.Run(tc.Name, func(t *testing.T) {
			body := tc.Body(valid)
			b, err := decodeForTest(t, s, body)
			if tc.Code != "" {
				ae, ok := err.(*apiError)
				if !ok || ae.Code != tc.Code || ae.Status != 400 {
					t.Fatalf("got %v, want 400 %s", err, tc.Code)
				}
				return
			}
			if err != nil {
				t.Fatalf("batch refused: %v", err)
			}
			if len(b.Rejected) != 1 || b.Rejected[0].Code != tc.Reject || len(b.Events) != b.Read-1 {
				t.Fatalf("rejected %+v, %d accepted; want one %s", b.Rejected, len(b.Events), tc.Reject)
			}
		})
	}
}

func TestStrictTakesWhatAgentsSend(t *testing.T) {
	s := fuzzServer(DefaultLimits())
	body := validBody(40)
	b, err := decodeForTest(t, s, body)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 40 || len(b.Rejected) != 0 {
		t.Fatalf("%d accepted, rejected %v", len(b.Events), b.Rejected)
	}
	if !b.SentAt.Equal(fuzzNow) {
		t.Errorf("sent_at = %v", b.SentAt)
	}
	// A second manifest version can be live: configured, it is taken.
	s.versions["2026.10.1"] = struct{}{}
	if _, err := decodeForTest(t, s, bytes.Replace(body, []byte(`"2026.11.1"`), []byte(`"2026.10.1"`), 1)); err != nil {
		t.Errorf("second live version refused: %v", err)
	}
	// sent_at months off is a device's clock, not an error.
	if _, err := decodeForTest(t, s, bytes.Replace(body, []byte(`"sent_at":"2026-11`), []byte(`"sent_at":"2026-03`), 1)); err != nil {
		t.Errorf("sent_at months off refused: %v", err)
	}
	// Escapes are read, and a valid surrogate pair is one character.
	esc := bytes.Replace(body, []byte(`"Secure Connection"`), []byte(`"Secure\u0020Conn\ud83d\ude00"`), 1)
	b, err = decodeForTest(t, s, esc)
	if err != nil || len(b.Events) != 40 {
		t.Fatalf("escapes: %v", err)
	}
	if got := b.Events[2].Fields["software.name"]; got != "Secure Conn\U0001F600" {
		t.Errorf("software.name = %q", got)
	}
}

// TestEventsBeforeRegion: keys are unordered, so events may come before
// the region they are validated for; they are checked when it arrives.
func TestEventsBeforeRegion(t *testing.T) {
	s := fuzzServer(DefaultLimits())
	var env map[string]json.RawMessage
	json.Unmarshal(validBody(6), &env)
	var out bytes.Buffer
	out.WriteString(`{"events":`)
	out.Write(bytes.Replace(env["events"], []byte(`"id":"strict-3"`), []byte(`"id":"strict-1"`), 1))
	for _, k := range []string{"batch_id", "installation_id", "region", "manifest_version", "sent_at"} {
		fmt.Fprintf(&out, ",%q:%s", k, env[k])
	}
	out.WriteString("}")
	b, err := decodeForTest(t, s, out.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Events) != 5 || len(b.Rejected) != 1 || b.Rejected[0].Index != 3 || b.Rejected[0].Code != wire.RejectDuplicateEvent {
		t.Fatalf("%d accepted, rejected %+v", len(b.Events), b.Rejected)
	}
	for i, ev := range b.Events {
		raw := b.RawFields(i)
		var fields map[string]any
		if err := json.Unmarshal([]byte(raw), &fields); err != nil || len(fields) != len(ev.Fields) {
			t.Errorf("event %d: raw fields %q: %v", i, raw, err)
		}
	}
}

// TestTooManyEventsStopsAtTheLimit: the count is enforced as events are
// read, so a flood of {} costs the limit, not the flood.
func TestTooManyEventsStopsAtTheLimit(t *testing.T) {
	s := fuzzServer(DefaultLimits())
	body := []byte(`{"batch_id":"x","events":[` + strings.Repeat(`{},`, 2_000_000) + `{}]}`)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := decodeForTest(t, s, body)
	runtime.ReadMemStats(&after)
	if ae, ok := err.(*apiError); !ok || ae.Code != wire.CodeTooManyEvents {
		t.Fatalf("got %v", err)
	}
	// The body string (6 MB) and at most the limit of events.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(len(body))+2<<20 {
		t.Errorf("decoding allocated %d bytes for a %d-byte body", alloc, len(body))
	}
}

// TestDecodeChargesWhatItAllocates measures what decoding allocates for
// batches of several shapes and checks that the budget was charged at
// least that much (and not grossly more, so the budget is not wasted).
func TestDecodeChargesWhatItAllocates(t *testing.T) {
	valid := validBody(500)
	many := func(n int, field string) []byte {
		var b bytes.Buffer
		b.WriteString(`{"batch_id":"x","region":"eu","manifest_version":"2026.11.1","sent_at":"2026-11-28T12:00:00Z","events":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"id":"e%d","type":"user_count","time":"2026-11-28T11:00:00Z","fields":{%s}}`, i, field)
		}
		b.WriteString("]}")
		return b.Bytes()
	}
	var undeclared strings.Builder
	for i := range 300 {
		fmt.Fprintf(&undeclared, `%s"u%d":1`, map[bool]string{true: ",", false: ""}[i > 0], i)
	}
	shapes := map[string][]byte{
		"typical":           valid,
		"empty events":      []byte(`{"batch_id":"x","region":"eu","events":[` + strings.Repeat(`{},`, 999) + `{}]}`),
		"escaped strings":   bytes.ReplaceAll(valid, []byte(`"Secure Connection"`), []byte(`"Secure\u0020Connection"`)),
		"long lists":        many(1000, `"os.update_packages":[`+strings.Repeat(`"KB1",`, 99)+`"KB1"]`),
		"undeclared fields": many(100, undeclared.String()),
	}
	l := DefaultLimits()
	s := fuzzServer(l)
	// Tens of megabytes of maps from a 2.6 MB body: refused on the way.
	if _, err := decodeForTest(t, s, many(1000, undeclared.String())); err == nil || err.(*apiError).Code != wire.CodeDecodedTooLarge {
		t.Errorf("1000 events of 300 undeclared fields: %v", err)
	}
	for name, body := range shapes {
		t.Run(name, func(t *testing.T) {
			var measured uint64
			var charged int64
			for range 3 { // the smallest of three runs: the pools are warm
				res := &reservation{a: s.admit}
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				b, err := decodeBatch(body, &decodeContext{limits: &s.limits, manifest: s.deps.Manifest, now: fuzzNow, res: res})
				runtime.ReadMemStats(&after)
				if err != nil {
					t.Fatal(err)
				}
				runtime.KeepAlive(b)
				m := after.TotalAlloc - before.TotalAlloc
				if measured == 0 || m < measured {
					measured = m
				}
				charged = res.n
				res.free()
			}
			t.Logf("%d-byte body: allocated %d, charged %d (%.2f)", len(body), measured, charged, float64(charged)/float64(measured))
			if uint64(charged) < measured {
				t.Errorf("charged %d bytes, decoding allocated %d", charged, measured)
			}
			if uint64(charged) > 3*measured+64<<10 {
				t.Errorf("charged %d bytes, more than 3× the %d allocated", charged, measured)
			}
		})
	}
}

func TestRandomUUID(t *testing.T) {
	for id, want := range map[string]bool{
		"0b7e2c4e-5a0f-4d7b-9c1e-2f3a4b5c6d7e": true,
		"00000000-0000-4000-8000-000000000000": false,
		"00000000-0000-4000-9000-000000000000": true, // one random bit set
		"00000000-0000-4000-8000-000000000001": true,
		"00000000-0000-0000-0000-000000000000": false,
		"00000000-0000-4000-c000-000000000001": false, // variant 110
		"6ba7b810-9dad-11d1-80b4-00c04fd430c8": false,
	} {
		if got := randomUUID(id); got != want {
			t.Errorf("randomUUID(%s) = %v", id, got)
		}
	}
}
