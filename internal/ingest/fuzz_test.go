package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/ingest/ingesttest"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/wire"
)

var fuzzNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func fuzzServer(l Limits) *Server {
	m := manifest.Reference()
	return &Server{deps: Deps{Manifest: m}, limits: l, admit: newAdmission(l), versions: map[string]struct{}{m.Version: {}}}
}

// FuzzDecodeBody throws arbitrary bodies, plain and declared as gzip or
// zstd, through everything that reads outside bytes before the store:
// decompression with its limits, the strict decoder and validation.
// Whatever comes in, the result is a documented API error or a submission
// whose response encodes, and the memory budget is returned.
func FuzzDecodeBody(f *testing.F) {
	valid := ingesttest.JSON(ingesttest.Batch(rand.New(rand.NewPCG(1, 1)), "seed", 3, fuzzNow))
	f.Add(valid, "")
	f.Add(ingesttest.Gzip(valid), "gzip")
	f.Add(ingesttest.Zstd(valid), "zstd")
	f.Add([]byte(`{"batch_id":"a","events":[{"id":"e","type":"task","time":"2026-11-28T10:00:00Z","fields":{"task.duration":1e400}}]}`), "")
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[`), "")

	l := DefaultLimits()
	l.MaxBodyBytes = 1 << 20
	l.MaxDecompressedBytes = 4 << 20
	l.MemoryBudget = 32 << 20
	s := fuzzServer(l)
	f.Fuzz(func(t *testing.T, body []byte, encoding string) {
		req := httptest.NewRequest("POST", "/v1/submit", bytes.NewReader(body))
		req.Header.Set("Content-Encoding", encoding)
		res := &reservation{a: s.admit}
		defer func() {
			res.free()
			if n := s.admit.inUse.Load(); n != 0 {
				t.Fatalf("budget leaked %d bytes", n)
			}
		}()
		buf, err := readBody(httptest.NewRecorder(), req, &s.limits, res, time.Now())
		if err != nil {
			documented(t, err)
			return
		}
		defer putBuffer(buf)
		batch, err := decodeBatch(*buf, &decodeContext{limits: &s.limits, manifest: s.deps.Manifest, now: fuzzNow, res: res})
		if err != nil {
			documented(t, err)
			return
		}
		if err := s.checkEnvelope(batch, fuzzNow); err != nil {
			documented(t, err)
			return
		}
		if len(batch.Rejected)+len(batch.Events) != batch.Read {
			t.Fatalf("%d rejected + %d accepted != %d events", len(batch.Rejected), len(batch.Events), batch.Read)
		}
		if _, err := json.Marshal(wire.SubmitAnswer{BatchID: batch.ID, Rejected: batch.Rejected, Accepted: len(batch.Events)}); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzStrictDecode checks the strict decoder against encoding/json: what
// the strict decoder takes, encoding/json takes too (strict is a subset),
// and reads the same way: the same envelope, and each accepted event equal
// to encoding/json's event at its index. Every accepted event passes the
// validator again, and its raw fields decode to its fields.
func FuzzStrictDecode(f *testing.F) {
	for _, seed := range strictSeeds() {
		f.Add(seed)
	}
	// A device a month ahead, one of its events too old even corrected.
	skewed := ingesttest.Batch(rand.New(rand.NewPCG(3, 4)), "skewed", 4, fuzzNow.Add(31*24*time.Hour))
	skewed.Events[2].Time = fuzzNow.Add(-500 * 24 * time.Hour)
	f.Add(ingesttest.JSON(skewed))
	l := DefaultLimits()
	l.MaxDecompressedBytes = 1 << 20
	l.MemoryBudget = 16 << 20
	s := fuzzServer(l)
	m := s.deps.Manifest
	f.Fuzz(func(t *testing.T, body []byte) {
		res := &reservation{a: s.admit}
		defer res.free()
		got, err := decodeBatch(body, &decodeContext{limits: &s.limits, manifest: m, now: fuzzNow, res: res})
		if err == nil {
			err = s.checkEnvelope(got, fuzzNow)
		}
		// The clock correction and the time window, as submit applies them.
		skew := time.Duration(0)
		if err == nil {
			skew = s.limits.clockSkew(got.SentAt, fuzzNow)
			err = s.limits.placeInTime(got, skew, fuzzNow, res)
		}
		if err != nil {
			documented(t, err)
			return
		}
		for i := 1; i < len(got.Rejected); i++ {
			if got.Rejected[i].Index <= got.Rejected[i-1].Index {
				t.Fatalf("rejections out of order or repeated: %+v", got.Rejected)
			}
		}
		var want provision.Batch
		d := json.NewDecoder(bytes.NewReader(body))
		d.UseNumber()
		if err := d.Decode(&want); err != nil {
			// encoding/json refuses an event's shape that strict only
			// rejects per event (a number id, an unknown event key): then
			// the envelope is compared through the raw events.
			var env struct {
				provision.Batch
				Events []json.RawMessage `json:"events"`
			}
			if err := json.Unmarshal(body, &env); err != nil {
				t.Fatalf("strict took what encoding/json refuses: %v\n%q", err, body)
			}
			want = env.Batch
			want.Events = make([]provision.Event, len(env.Events))
			for i, raw := range env.Events {
				d := json.NewDecoder(bytes.NewReader(raw))
				d.UseNumber()
				if d.Decode(&want.Events[i]) != nil {
					want.Events[i] = provision.Event{ID: "\x00undecodable"}
				}
			}
		}
		if got.ID != want.ID || got.InstallationID != want.InstallationID || got.Region != want.Region || got.ManifestVersion != want.ManifestVersion {
			t.Fatalf("envelope differs: strict %+v, encoding/json %+v", got.Batch, want)
		}
		if got.Read != len(want.Events) {
			t.Fatalf("strict read %d events, encoding/json %d", got.Read, len(want.Events))
		}
		rejected := map[int]bool{}
		for _, r := range got.Rejected {
			rejected[r.Index] = true
		}
		k := 0
		for i := range want.Events {
			if rejected[i] {
				continue
			}
			if k >= len(got.Events) {
				t.Fatalf("event %d neither accepted nor rejected", i)
			}
			g, w := got.Events[k], want.Events[i]
			if g.ID != w.ID || g.Type != w.Type || !g.Time.Equal(w.Time.Add(skew)) || g.ClockSkew != skew || !sameFields(g.Fields, w.Fields) {
				t.Fatalf("event %d differs:\nstrict        %#v\nencoding/json %#v", i, g, w)
			}
			if vs := m.CheckEvent(nil, i, &g, got.Region); len(vs) > 0 {
				t.Fatalf("accepted event %d fails validation: %v", i, vs)
			}
			if raw := got.RawFields(k); raw != "" {
				var fields map[string]any
				d := json.NewDecoder(bytes.NewReader([]byte(raw)))
				d.UseNumber()
				if err := d.Decode(&fields); err != nil || !sameFields(fields, g.Fields) {
					t.Fatalf("raw fields %q of event %d do not decode to its fields: %v", raw, i, err)
				}
			}
			k++
		}
		if k != len(got.Events) {
			t.Fatalf("%d accepted events, %d matched", len(got.Events), k)
		}
	})
}

// sameFields compares fields as decoded values: lists of strings and of
// any are the same list.
func sameFields(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok || !reflect.DeepEqual(va, vb) {
			return false
		}
	}
	return true
}

func documented(t *testing.T, err error) {
	t.Helper()
	var ae *apiError
	if !errors.As(err, &ae) || ae.Code == "" || ae.Status < 400 || ae.Status > 503 {
		t.Fatalf("undocumented error %v", err)
	}
}
