package privacy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/postgres"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rig is a privacy service on a real SQLite store in a temp dir.
type rig struct {
	log   logStore
	sq    *sqlite.Store // nil on other stores
	ps    privacy.Store
	svc   *privacy.Service
	m     *manifest.Manifest
	clock *fakeClock
}

func newRig(t testing.TB) *rig {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "provision.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return finishRig(t, &rig{log: st, sq: st, ps: sqlite.NewPrivacyStore(st.DB())})
}

// newPostgresRig is a rig on a fresh PostgreSQL schema; it skips without
// PROVISION_TEST_POSTGRES (fails under PROVISION_REQUIRE_SERVICES=1).
func newPostgresRig(t testing.TB) *rig {
	t.Helper()
	st := pgtest.Open(t)
	return finishRig(t, &rig{log: st, ps: postgres.NewPrivacyStore(st)})
}

func finishRig(t testing.TB, r *rig) *rig {
	t.Helper()
	r.m = manifest.Reference()
	r.clock = &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	var err error
	r.svc, err = privacy.New(privacy.Options{Store: r.ps, Manifest: r.m, Now: r.clock.Now, Chunk: 7})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// logStore is the log side of a store.
type logStore interface {
	provision.Log
	provision.Checkpoints
}

// forEachStore runs the test body on every store that implements
// privacy.Store: the same rules must hold on each.
func forEachStore(t *testing.T, body func(t *testing.T, r *rig)) {
	t.Run("sqlite", func(t *testing.T) { body(t, newRig(t)) })
	t.Run("postgres", func(t *testing.T) { body(t, newPostgresRig(t)) })
}

// newInstallationID returns a random version 4 UUID, as agents make them.
func newInstallationID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

var seqMu sync.Mutex
var seqN int

func nextID(prefix string) string {
	seqMu.Lock()
	defer seqMu.Unlock()
	seqN++
	return fmt.Sprintf("%s-%d", prefix, seqN)
}

// siteCert and siteSPKI are a real self-signed certificate (base64 DER)
// and the SHA-256 of its public key, as an agent reports them.
var siteCert, siteSPKI = func() (string, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "www.example.org"},
		NotBefore: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return base64.StdEncoding.EncodeToString(der), certs.SPKISHA256Hex(cert)
}()

func softwareEvent(at time.Time) provision.Event {
	return provision.Event{ID: nextID("ev"), Type: "software", Time: at, Fields: map[string]any{
		"software.type": "vpn", "software.name": "Secure Connection", "software.version": "5.14.0.1",
		"location.country": "DE",
	}}
}

func tlsEvent(at time.Time) provision.Event {
	return provision.Event{ID: nextID("ev"), Type: "tls_connection", Time: at, Fields: map[string]any{
		"tls.certificate": siteCert, "tls.spki_sha256": siteSPKI, "event.count": 3,
		"location.country": "DE", "location.subdivision": "BE",
	}}
}

// appendBatch appends one submission of the installation.
func (r *rig) appendBatch(t testing.TB, installationID, region string, events ...provision.Event) {
	t.Helper()
	sub := &provision.Submission{BatchID: nextID("b"), InstallationID: installationID, Region: region,
		ManifestVersion: r.m.Version, ReceivedAt: r.clock.Now(), Events: events, Response: []byte(`{}`)}
	if _, _, err := r.log.Append(context.Background(), sub); err != nil {
		t.Fatal(err)
	}
}

// logRecords replays the whole log from position 0.
func (r *rig) logRecords(t testing.TB) []provision.Record {
	t.Helper()
	var out []provision.Record
	var after int64
	for {
		recs, err := r.log.Read(context.Background(), after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		out = append(out, recs...)
		after = recs[len(recs)-1].Seq
	}
}

func countFor(recs []provision.Record, installationID string) int {
	n := 0
	for _, r := range recs {
		if r.InstallationID == installationID {
			n++
		}
	}
	return n
}

// fakeClock is an injected clock whose sleeps return at once and are
// recorded, so the retention job's pacing is observable.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	c.mu.Unlock()
	return ctx.Err()
}

func (c *fakeClock) Sleeps() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sleeps)
}

const day = 24 * time.Hour

// asSent is the event as an agent sends it: without the items that only
// the server derives.
func asSent(ev provision.Event) provision.Event {
	fields := make(map[string]any, len(ev.Fields))
	for k, v := range ev.Fields {
		if !strings.HasPrefix(k, "location.") {
			fields[k] = v
		}
	}
	ev.Fields = fields
	return ev
}
