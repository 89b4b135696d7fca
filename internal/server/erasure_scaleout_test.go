package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/provisionhq/provision/internal/batchcodec"

	"github.com/provisionhq/provision/agent"
	"github.com/provisionhq/provision/internal/backend"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/natslog"
	"github.com/provisionhq/provision/internal/natslog/natstest"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/rollup"
	"github.com/provisionhq/provision/internal/worker"
)

// Canaries planted by plantCanaries: values no other data contains.
const (
	swCanary  = "CanarySoftwareQ7X"
	errCanary = "CANARYERRCODE5K"
	ctlCanary = "canary_control_9z"
	rejCanary = "canary_rejected_3w"
)

// recipientsConfig writes a forwarders' file that sends counts to the
// peer's Google Analytics and webhook and tells both of deletions, and
// returns its path.
func recipientsConfig(t *testing.T, peer *recipientsPeer) string {
	t.Helper()
	cfgDir := t.TempDir()
	caFile := filepath.Join(cfgDir, "peer.pem")
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	sa, _ := json.Marshal(map[string]string{"type": "service_account", "client_email": "p@test.iam.gserviceaccount.com",
		"private_key": string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), "token_uri": peer.srv.URL + "/token"})
	files := map[string][]byte{
		"peer.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: peer.srv.Certificate().Raw}),
		"ga.json":  sa, "ga.secret": []byte("ga-api-secret"), "hook.secret": []byte(strings.Repeat("h", 32)),
		"forward.yaml": []byte("google_analytics:\n  measurement_id: G-TEST\n  api_secret_file: " + filepath.Join(cfgDir, "ga.secret") +
			"\n  endpoint: " + peer.srv.URL + "/mp/collect\n  ca_file: " + caFile +
			"\n  deletion:\n    property_id: \"123\"\n    credentials_file: " + filepath.Join(cfgDir, "ga.json") +
			"\n    endpoint: " + peer.srv.URL + "/upsert\n" +
			"third_party:\n  url: " + peer.srv.URL + "/hook\n  secret_file: " + filepath.Join(cfgDir, "hook.secret") + "\n  ca_file: " + caFile + "\n"),
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(cfgDir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(cfgDir, "forward.yaml")
}

// plantCanaries sends, through the real agent in stateDir, the canaries:
// the software name, an error's code and control id, and a value the
// server refuses. It returns the agent (closed when the test ends) and its
// consent, whose installation id is the first canary.
func plantCanaries(t *testing.T, stateDir string, up agent.Upload) (*agent.Agent, agent.Consent) {
	t.Helper()
	ctx := context.Background()
	// The agent's manifest allows one task status more than the server's,
	// so the server refuses that event.
	ref := string(manifest.ReferenceYAML())
	const statuses = "values: [success, failure, cancelled, reboot_required]"
	if !strings.Contains(ref, statuses) {
		t.Fatal("the reference manifest's task statuses changed")
	}
	mf := filepath.Join(t.TempDir(), "manifest.yaml")
	if err := os.WriteFile(mf, []byte(strings.Replace(ref, statuses, "values: [success, failure, cancelled, reboot_required, "+rejCanary+"]", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	a, err := agent.Open(agent.Config{StateDir: stateDir, ManifestFile: mf,
		Software: agent.Software{Type: "vpn", Name: swCanary, Version: "1.2.3", Edition: "premium", Localization: "en-GB"},
		ReadOS: func(context.Context) (agent.OSInfo, error) {
			return agent.OSInfo{Type: "linux", Version: "12"}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	c, err := a.Accept("eu")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Collect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.RecordError(ctx, agent.UIError{Type: "connection_failed", Code: errCanary, ControlID: ctlCanary}); err != nil {
		t.Fatal(err)
	}
	if err := a.RecordTask(ctx, agent.Task{Type: agent.TaskInstall, Status: rejCanary, Duration: time.Second}); err != nil {
		t.Fatal(err)
	}
	rep, err := a.Flush(ctx, up)
	if err != nil || rep.Accepted == 0 || rep.Rejected == 0 {
		t.Fatalf("flush: %+v %v", rep, err)
	}
	return a, c
}

// activeDistinct sums the distinct installations of the active view.
func activeDistinct(t *testing.T, b *backend.Backend) int64 {
	t.Helper()
	cs, err := b.Rollups.Cells(context.Background(), rollup.Query{Views: []string{rollup.ViewActive}})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, c := range cs {
		n += c.Distinct()
	}
	return n
}

// The done-when test of erasure on the scale-out backends: canaries planted
// through the real agent and server (a rejected value and a rollup update
// included; with JetStream, through the worker that moves the log into
// PostgreSQL) are, once the withdrawal's erasure completed, in no row of
// any table of the schema and in no message of the streams, dead letters
// included.
func TestWithdrawalErasesEveryByteOnScaleOut(t *testing.T) {
	t.Run("postgres", func(t *testing.T) { testScaleOutErasure(t, false) })
	t.Run("nats+postgres", func(t *testing.T) { testScaleOutErasure(t, true) })
}

func testScaleOutErasure(t *testing.T, jetStream bool) {
	ctx := context.Background()
	pc := pgtest.Config(t)
	opts := backend.Options{Store: pc.URL, Schema: pc.Schema, MaxConns: 8}
	var lc natslog.Config
	if jetStream {
		lc = natstest.Config(t, natstest.URL(t))
		opts.Log, opts.NATS = lc.URL, lc
	}
	b, err := backend.Open(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if jetStream {
		runWorker(t, b)
	}
	dataDir, stateDir := t.TempDir(), t.TempDir()
	peer := newRecipientsPeer(t)
	s, _ := started(t, b, Config{Data: dataDir, ForwardConfig: recipientsConfig(t, peer), RollupInterval: 50 * time.Millisecond})
	serverCA := filepath.Join(t.TempDir(), "server.pem")
	if err := os.WriteFile(serverCA, s.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	up := agent.Upload{Server: s.URL, CAFile: serverCA}
	a, c := plantCanaries(t, stateDir, up)
	waitFor(t, "the rollup update", func() bool { return activeDistinct(t, b) > 0 })

	stored := []string{c.InstallationID, swCanary, errCanary, ctlCanary}
	needles := append(stored, rejCanary)
	// The test can fail: before the withdrawal every canary is stored.
	for _, n := range stored {
		if len(pgHolding(t, pc.URL, pc.Schema, []string{n})) == 0 {
			t.Fatalf("%s never reached PostgreSQL: the test would check nothing", n)
		}
		if jetStream && len(streamsHolding(t, b, []string{n})) == 0 {
			t.Fatalf("%s never reached the stream: the test would check nothing", n)
		}
	}
	if len(filesHolding(t, []string{rejCanary}, stateDir)) == 0 {
		t.Fatal("the rejected value was never sent")
	}

	if _, err := a.Withdraw(); err != nil {
		t.Fatal(err)
	}
	if rep, err := a.Flush(ctx, up); err != nil || rep.Deletions != 1 {
		t.Fatalf("flush of the deletion: %+v %v", rep, err)
	}
	sent, err := a.Sent(0)
	if err != nil || len(sent) != 1 || sent[0].Kind != "deletion" {
		t.Fatalf("sent log after withdrawal = %+v %v", sent, err)
	}
	waitConfirmed(t, b, sent[0].RequestID)
	waitFor(t, "the rollup refresh", func() bool { return activeDistinct(t, b) == 0 })

	if got := pgHolding(t, pc.URL, pc.Schema, needles); len(got) > 0 {
		t.Errorf("after erasure, PostgreSQL rows still hold: %v", got)
	}
	if jetStream {
		if got := streamsHolding(t, b, needles); len(got) > 0 {
			t.Errorf("after erasure, stream messages still hold: %v", got)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := filesHolding(t, needles, stateDir); len(got) > 0 {
		t.Errorf("after withdrawal, the agent's files still hold: %v", got)
	}
}

// waitConfirmed waits until the request is complete and both recipients
// confirmed its deletion notice, with a time, as `privacy status` shows
// the receipt, and returns the receipt.
func waitConfirmed(t *testing.T, b *backend.Backend, requestID string) *privacy.Request {
	t.Helper()
	svc, _, err := b.PrivacyService(testManifest(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var r *privacy.Request
	waitFor(t, "the erasure and the recipients' confirmations", func() bool {
		if r, err = svc.Status(context.Background(), requestID); err != nil || r.Status != privacy.StatusComplete {
			return false
		}
		confirmed := 0
		for _, o := range r.Removed.Owners {
			if (o.Owner == "recipient:google_analytics" || o.Owner == "recipient:third_party") &&
				o.Status == privacy.OutcomeConfirmed && !o.At.IsZero() {
				confirmed++
			}
		}
		return confirmed == 2
	})
	return r
}

// runWorker runs the worker that moves the stream into PostgreSQL, and
// the rollup job the workers own, until the test ends.
func runWorker(t *testing.T, b *backend.Backend) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cons, err := b.NATS.Consumer(ctx, natslog.DefaultConsumerConfig("store"))
	if err != nil {
		t.Fatal(err)
	}
	wc := worker.DefaultConfig()
	wc.FetchWait = 100 * time.Millisecond
	w, err := worker.New(cons, b.Postgres, wc)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs <- w.Run(ctx) }()
	go func() { defer wg.Done(); errs <- RollupJob(b, 50*time.Millisecond, nil, nil)(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	})
}

// expand returns b, the output of every zstd frame inside it and the
// events of a stored batch payload that ends it (S2-compressed, as rows and
// stream messages hold them), so a search also finds what they hold
// compressed.
func expand(b []byte) [][]byte {
	out := [][]byte{b}
	for i := range b {
		// A payload starts with its format byte and runs to the end; a
		// wrong start fails to decode.
		if b[i] != 1 && b[i] != 2 {
			continue
		}
		if entries, err := batchcodec.Decode(b[i:]); err == nil && len(entries) > 0 {
			if j, err := json.Marshal(entries); err == nil {
				out = append(out, j)
			}
		}
	}
	magic := []byte{0x28, 0xb5, 0x2f, 0xfd}
	for off := 0; off < len(b); {
		i := bytes.Index(b[off:], magic)
		if i < 0 {
			break
		}
		off += i
		if d, err := zstd.NewReader(bytes.NewReader(b[off:]), zstd.WithDecoderMaxMemory(64<<20), zstd.WithDecoderConcurrency(1)); err == nil {
			raw, _ := io.ReadAll(io.LimitReader(d, 64<<20))
			d.Close()
			if len(raw) > 0 {
				out = append(out, raw)
			}
		}
		off += len(magic)
	}
	return out
}

// holds returns the first needle in b or in what b holds compressed.
func holds(b []byte, needles []string) string {
	for _, x := range expand(b) {
		for _, n := range needles {
			if bytes.Contains(x, []byte(n)) {
				return n
			}
		}
	}
	return ""
}

// pgHolding reads every row of every table of the schema (partitions
// included), each cast to text and each bytea column raw and
// decompressed, and returns, per "table/row", a needle it holds.
func pgHolding(t *testing.T, url, schema string, needles []string) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT c.oid::bigint, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'm') ORDER BY c.relname`, schema)
	if err != nil {
		t.Fatal(err)
	}
	type table struct {
		OID  int64
		Name string
	}
	tables, err := pgx.CollectRows(rows, pgx.RowToStructByPos[table])
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 10 {
		t.Fatalf("schema %s has %d tables: not the store's", schema, len(tables))
	}
	found := map[string]string{}
	scan := func(tbl, query string) {
		rows, err := conn.Query(ctx, query)
		if err != nil {
			t.Fatalf("%s: %v", tbl, err)
		}
		defer rows.Close()
		for i := 0; rows.Next(); i++ {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatalf("%s: %v", tbl, err)
			}
			if n := holds(b, needles); n != "" {
				found[fmt.Sprintf("%s/%d", tbl, i)] = n
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", tbl, err)
		}
	}
	for _, tb := range tables {
		name := pgx.Identifier{schema, tb.Name}.Sanitize()
		scan(tb.Name, `SELECT convert_to(t::text, 'UTF8') FROM ONLY `+name+` t`)
		cols, err := conn.Query(ctx, `SELECT attname FROM pg_attribute WHERE attrelid = $1 AND atttypid = 'bytea'::regtype
			AND attnum > 0 AND NOT attisdropped`, uint32(tb.OID))
		if err != nil {
			t.Fatal(err)
		}
		names, err := pgx.CollectRows(cols, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		for _, col := range names {
			scan(tb.Name+"."+col, `SELECT `+pgx.Identifier{col}.Sanitize()+` FROM ONLY `+name+` WHERE `+pgx.Identifier{col}.Sanitize()+` IS NOT NULL`)
		}
	}
	return found
}

// streamsHolding reads every message of the log's streams, the
// dead-letter stream included, and returns, per "stream/seq", a needle its
// data or headers hold.
func streamsHolding(t *testing.T, b *backend.Backend, needles []string) map[string]string {
	t.Helper()
	ctx := context.Background()
	nc, err := nats.Connect(os.Getenv("PROVISION_TEST_NATS"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, name := range b.NATS.Streams() {
		s, err := js.Stream(ctx, name)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for seq := max(info.State.FirstSeq, 1); seq <= info.State.LastSeq; seq++ {
			m, err := s.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			n := holds(m.Data, needles)
			if n == "" {
				n = holds([]byte(fmt.Sprint(m.Header)), needles)
			}
			if n != "" {
				found[fmt.Sprintf("%s/%d", name, seq)] = n
			}
		}
	}
	return found
}
