package backend

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"github.com/provisionhq/provision/internal/privacy"
)

// writeBytes is this process's write_bytes from /proc/self/io: what it
// caused to be written to storage. -1 where there is no /proc.
func writeBytes() int64 {
	f, err := os.Open("/proc/self/io")
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "write_bytes: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

// walLSN is the PostgreSQL server's current WAL position: the difference
// of two is the WAL written in between, by every session of the server.
func walLSN(tb testing.TB, conn *pgx.Conn) int64 {
	var lsn int64
	if err := conn.QueryRow(context.Background(), `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint`).Scan(&lsn); err != nil {
		tb.Fatal(err)
	}
	return lsn
}

// BenchmarkErasure measures erasures, one alone and a thousand in a
// batch, each installation with 20 events in 4 batches, among 1,000
// installations kept: time per erasure and bytes written per erasure, the
// rollup refresh of the batch included, and on PostgreSQL the VACUUM the
// erasures request; µs-before-refresh/erasure is the time until the last
// erasure completed, without the refresh pass (which reads the log once)
// and without waiting for the VACUUM. Bytes written are this process's write_bytes on the
// embedded store (the SQLite file, its WAL and the checkpoint that
// truncates it) and the WAL the PostgreSQL server wrote meanwhile
// (pg_current_wal_lsn before and after; other sessions of the same server
// add to it). The PostgreSQL case needs PROVISION_TEST_POSTGRES.
//
//	go test -run '^$' -bench Erasure -benchtime 1x ./internal/backend/
func BenchmarkErasure(b *testing.B) {
	for _, engine := range []string{"sqlite", "postgres"} {
		for _, n := range []int{1, 1000} {
			b.Run(fmt.Sprintf("%s/batch=%d", engine, n), func(b *testing.B) {
				ctx := context.Background()
				for b.Loop() {
					b.StopTimer()
					opts := Options{Store: b.TempDir(), Create: true}
					var conn *pgx.Conn
					if engine == "postgres" {
						pc := pgtest.Config(b)
						opts = Options{Store: pc.URL, Schema: pc.Schema, MaxConns: 4}
						var err error
						if conn, err = pgx.Connect(ctx, pc.URL); err != nil {
							b.Fatal(err)
						}
					}
					be, err := Open(ctx, opts)
					if err != nil {
						b.Fatal(err)
					}
					seedErasureBench(b, be, 1000+n)
					refresh := be.Refresher(nil)
					svc, _, err := be.PrivacyService(referenceManifest(b), nil, refresh)
					if err != nil {
						b.Fatal(err)
					}
					if be.Postgres != nil {
						be.Postgres.WaitVacuum()
					}
					var wal0 int64
					if conn != nil {
						wal0 = walLSN(b, conn)
					}
					w0, t0 := writeBytes(), time.Now()
					b.StartTimer()
					for i := range n {
						if _, err := svc.Erase(ctx, benchID(1000+i), fmt.Sprintf("r%d", i), privacy.SourceOperator); err != nil {
							b.Fatal(err)
						}
					}
					erased := time.Since(t0)
					if _, err := refresh.Refresh(ctx); err != nil {
						b.Fatal(err)
					}
					if be.Postgres != nil {
						be.Postgres.WaitVacuum()
					}
					b.StopTimer()
					el, w1 := time.Since(t0), writeBytes()
					b.ReportMetric(float64(el.Microseconds())/float64(n), "µs/erasure")
					b.ReportMetric(float64(erased.Microseconds())/float64(n), "µs-before-refresh/erasure")
					if conn != nil {
						b.ReportMetric(float64(walLSN(b, conn)-wal0)/float64(n), "WAL-B/erasure")
						conn.Close(ctx)
					} else if w0 >= 0 {
						b.ReportMetric(float64(w1-w0)/float64(n), "written-B/erasure")
					}
					be.Close()
					b.StartTimer()
				}
			})
		}
	}
}

func benchID(i int) string { return fmt.Sprintf("%08x-0000-4000-8000-%012x", i, i) }

// seedErasureBench stores installations 0..n-1, each with 20 events in 4
// batches received yesterday, and folds them into the rollups.
func seedErasureBench(b *testing.B, be *Backend, n int) {
	ctx := context.Background()
	day := time.Now().UTC().Add(-24 * time.Hour)
	for i := range n {
		for j := range 4 {
			sub := &provision.Submission{BatchID: fmt.Sprintf("b%d-%d", i, j), InstallationID: benchID(i), Region: "eu", ReceivedAt: day, Response: []byte(`{}`)}
			for k := range 5 {
				sub.Events = append(sub.Events, provision.Event{ID: fmt.Sprintf("e%d-%d-%d", i, j, k), Type: "software", Time: day,
					Fields: map[string]any{"software.name": "Secure Connection", "software.version": "5.14.0"}})
			}
			if _, _, err := be.Log.Append(ctx, sub); err != nil {
				b.Fatal(err)
			}
		}
	}
	if _, err := be.Updater(nil).Update(ctx); err != nil {
		b.Fatal(err)
	}
}
