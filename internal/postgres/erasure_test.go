package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/postgres"
	"github.com/provisionhq/provision/internal/postgres/pgtest"
	"github.com/provisionhq/provision/internal/privacy"
	"github.com/provisionhq/provision/internal/storetest"
)

// After an erasure through the privacy service, no row of any table of the
// store holds the installation's id or its values, its batches' stored
// answers are gone with them, and the tables were vacuumed, so the dead
// tuples are gone from the heap and the indexes.
func TestErasureLeavesNoRowsAndVacuums(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := pgtest.Config(t)
	s, err := postgres.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	const erased = "c4a7a11e-5eed-4bad-8c0d-ca7a21e5f00d"
	canaries := []string{erased, "canary-answer-3b0e1d"}
	for i := range 6 {
		sub := storetest.Submission(fmt.Sprint("b", i), fmt.Sprint("e", i), 40)
		if i%2 == 0 {
			sub.InstallationID = erased
			sub.Response = []byte(`{"batch_id":"b","rejected":[{"message":"canary-answer-3b0e1d"}]}`)
			for j := range sub.Events {
				sub.Events[j].Fields["os.version"] = "canary-os-5d22e0"
			}
		}
		if _, _, err := s.Append(ctx, sub); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := pgx.Connect(ctx, cfg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET search_path = "+cfg.Schema); err != nil {
		t.Fatal(err)
	}
	if found := rowsHolding(t, conn, canaries); len(found) != 2 {
		t.Fatalf("before the erasure the search finds only %v", found)
	}

	svc, err := privacy.New(privacy.Options{Store: postgres.NewPrivacyStore(s), Manifest: manifest.Reference()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Erase(ctx, erased, "", privacy.SourceOperator); err != nil {
		t.Fatal(err)
	}
	if found := rowsHolding(t, conn, canaries); len(found) != 0 {
		t.Errorf("after the erasure: %v", found)
	}
	// The compressed payloads hide values from a text search; the
	// remaining batches, decoded, hold none of them either.
	recs, err := s.Read(ctx, 0, 1000)
	if err != nil || len(recs) != 120 {
		t.Fatalf("read %d records, %v; want the other installation's 120", len(recs), err)
	}
	for _, r := range recs {
		if r.InstallationID == erased || r.Event.Fields["os.version"] == "canary-os-5d22e0" {
			t.Fatalf("record of the erased installation: %+v", r)
		}
	}
	if runs := s.WaitVacuum(); runs < 1 {
		t.Fatalf("no VACUUM ran after the erasure")
	}
	var vacuumed time.Time
	deadline := time.Now().Add(10 * time.Second)
	for vacuumed.IsZero() && time.Now().Before(deadline) {
		err := conn.QueryRow(ctx, `SELECT coalesce(max(last_vacuum), 'epoch') FROM pg_stat_user_tables
			WHERE schemaname = $1 AND relname = 'batch_keys'`, cfg.Schema).Scan(&vacuumed)
		if err != nil {
			t.Fatal(err)
		}
		if vacuumed.Unix() == 0 {
			vacuumed = time.Time{}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if vacuumed.IsZero() {
		t.Error("batch_keys was not vacuumed")
	}
}

// rowsHolding returns "table: needle" for each table of the schema with a
// row whose text form contains a needle.
func rowsHolding(t *testing.T, conn *pgx.Conn, needles []string) []string {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, n := range needles {
		for _, tbl := range tables {
			var hit bool
			// The table name comes from the catalog, not from input.
			q := `SELECT EXISTS (SELECT 1 FROM ` + pgx.Identifier{tbl}.Sanitize() + ` r
				WHERE strpos(r::text, $1) > 0 OR strpos(r::text, encode(convert_to($1, 'UTF8'), 'hex')) > 0)`
			if err := conn.QueryRow(ctx, q, n).Scan(&hit); err != nil {
				t.Fatal(err)
			}
			if hit {
				found = append(found, tbl+": "+n)
				break
			}
		}
	}
	return found
}
