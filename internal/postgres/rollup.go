package postgres

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/provisionhq/provision/internal/rollup"
)

// RollupStore keeps rollups in PostgreSQL. Several workers merge into the
// same cells at once without losing updates: Apply locks the consumer's
// checkpoint row, then the existing cells of its delta (in key order, so
// that two merges cannot wait on each other), merges in Go and writes back.
// A cell created meanwhile by another merge makes Apply start over.
type RollupStore struct{ s *Store }

var _ rollup.Store = (*RollupStore)(nil)

// Rollups returns the rollup store on the same database and pool.
func (s *Store) Rollups() *RollupStore { return &RollupStore{s: s} }

// errCellRace says a cell this merge meant to create was created by a
// concurrent one; the transaction is rolled back and run again.
var errCellRace = errors.New("rollup cell created concurrently")

// maxApplyAttempts bounds the reruns of one Apply after races and deadlocks.
const maxApplyAttempts = 20

func (r *RollupStore) Checkpoint(ctx context.Context, consumer string) (int64, error) {
	seq, err := readCheckpoint(ctx, r.s.pool, "rollup_checkpoints", consumer)
	if err != nil {
		return 0, fmt.Errorf("postgres: rollup checkpoint: %w", classify(err))
	}
	return seq, nil
}

func (r *RollupStore) Apply(ctx context.Context, consumer string, from, to int64, d rollup.Delta) error {
	// Merge cells of the same key within the delta first, then sort, so
	// every transaction locks rows in one global order.
	byKey := map[rollup.Key]*rollup.Cell{}
	var cells []*rollup.Cell
	for _, c := range d.Cells {
		if cur, ok := byKey[c.Key]; ok {
			if err := cur.Merge(c); err != nil {
				return err
			}
			continue
		}
		cp := rollup.NewCell(c.Key)
		if err := cp.Merge(c); err != nil {
			return err
		}
		byKey[c.Key] = cp
		cells = append(cells, cp)
	}
	rollup.SortCells(cells)
	certs := append([]rollup.Cert(nil), d.Certs...)
	sortCerts(certs)

	var err error
	for attempt := 0; attempt < maxApplyAttempts; attempt++ {
		err = pgx.BeginFunc(ctx, r.s.pool, func(tx pgx.Tx) error {
			return applyTx(ctx, tx, consumer, from, to, cells, certs)
		})
		if errors.Is(err, errCellRace) || isDeadlock(err) {
			continue
		}
		break
	}
	return rollupErr("apply", err)
}

// rollupErr names the operation in err; a lost race (rollup.ErrConflict)
// is returned as it is, for the caller to retry.
func rollupErr(op string, err error) error {
	if err == nil || errors.Is(err, rollup.ErrConflict) {
		return err
	}
	return fmt.Errorf("postgres: rollup %s: %w", op, classify(err))
}

func isDeadlock(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "40P01" || pgErr.Code == "40001")
}

func applyTx(ctx context.Context, tx pgx.Tx, consumer string, from, to int64, cells []*rollup.Cell, certs []rollup.Cert) error {
	// The checkpoint row serialises the merges of one consumer.
	if _, err := tx.Exec(ctx, `INSERT INTO rollup_checkpoints (consumer, seq) VALUES ($1, 0) ON CONFLICT DO NOTHING`, consumer); err != nil {
		return err
	}
	var cur int64
	if err := tx.QueryRow(ctx, `SELECT seq FROM rollup_checkpoints WHERE consumer = $1 FOR UPDATE`, consumer).Scan(&cur); err != nil {
		return err
	}
	if cur != from {
		return rollup.ErrConflict
	}

	if len(cells) > 0 {
		days, views, dims := make([]string, len(cells)), make([]string, len(cells)), make([]string, len(cells))
		for i, c := range cells {
			days[i], views[i], dims[i] = c.Day, c.View, c.Dims
		}
		rows, err := tx.Query(ctx, `
			SELECT c.day, c.view, c.dims, c.events, c.weight, c.failures, c.installs, c.durations
			FROM rollup_cells c
			JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(day, view, dims)
			  ON c.day = k.day AND c.view = k.view AND c.dims = k.dims
			ORDER BY c.day, c.view, c.dims
			FOR UPDATE OF c`, days, views, dims)
		if err != nil {
			return err
		}
		stored := map[rollup.Key]*rollup.Cell{}
		for rows.Next() {
			var k rollup.Key
			var events, weight, failures int64
			var e rollup.Encoded
			if err := rows.Scan(&k.Day, &k.View, &k.Dims, &events, &weight, &failures, &e.Installs, &e.Durations); err != nil {
				rows.Close()
				return err
			}
			c, err := rollup.DecodeCell(k, events, weight, failures, e)
			if err != nil {
				rows.Close()
				return err
			}
			stored[k] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}

		var upd, ins [][]any
		for _, c := range cells {
			old, ok := stored[c.Key]
			row, err := rollup.MergedValues(old, c)
			if err != nil {
				return err
			}
			if ok {
				upd = append(upd, row)
			} else {
				ins = append(ins, row)
			}
		}
		if len(upd) > 0 {
			cols := columns(upd)
			if _, err := tx.Exec(ctx, `
				UPDATE rollup_cells c SET events = u.events, weight = u.weight, failures = u.failures,
					installs = u.installs, durations = u.durations, installs_distinct = u.installs_distinct
				FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bytea[], $8::bytea[], $9::bigint[])
					AS u(day, view, dims, events, weight, failures, installs, durations, installs_distinct)
				WHERE c.day = u.day AND c.view = u.view AND c.dims = u.dims`, cols...); err != nil {
				return err
			}
		}
		if len(ins) > 0 {
			cols := columns(ins)
			tag, err := tx.Exec(ctx, `
				INSERT INTO rollup_cells (day, view, dims, events, weight, failures, installs, durations, installs_distinct)
				SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bytea[], $8::bytea[], $9::bigint[])
				ORDER BY 1, 2, 3
				ON CONFLICT (day, view, dims) DO NOTHING`, cols...)
			if err != nil {
				return err
			}
			if tag.RowsAffected() != int64(len(ins)) {
				return errCellRace
			}
		}
	}

	for _, c := range certs {
		if _, err := tx.Exec(ctx, rollup.UpsertCertSQL,
			c.View, c.ID, c.Subject, c.Issuer, nullTime(c.NotBefore), nullTime(c.NotAfter), c.SelfSigned, c.DER); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, `UPDATE rollup_checkpoints SET seq = $2 WHERE consumer = $1`, consumer, to)
	return err
}

// columns turns rows into one slice per column for unnest.
func columns(rows [][]any) []any {
	day, view, dims := make([]string, len(rows)), make([]string, len(rows)), make([]string, len(rows))
	events, weight, failures := make([]int64, len(rows)), make([]int64, len(rows)), make([]int64, len(rows))
	inst, dur := make([][]byte, len(rows)), make([][]byte, len(rows))
	distinct := make([]*int64, len(rows))
	for i, r := range rows {
		day[i], view[i], dims[i] = r[0].(string), r[1].(string), r[2].(string)
		events[i], weight[i], failures[i] = r[3].(int64), r[4].(int64), r[5].(int64)
		inst[i], dur[i] = r[6].([]byte), r[7].([]byte)
		distinct[i] = r[8].(*int64)
	}
	return []any{day, view, dims, events, weight, failures, inst, dur, distinct}
}

// sortCerts orders certificates by view and id, in Go's byte order, which
// is also the order rows are locked in.
func sortCerts(cs []rollup.Cert) {
	slices.SortFunc(cs, func(a, b rollup.Cert) int {
		return cmp.Or(strings.Compare(a.View, b.View), strings.Compare(a.ID, b.ID))
	})
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC()
}

func (r *RollupStore) Cells(ctx context.Context, q rollup.Query) ([]*rollup.Cell, error) {
	rows, err := r.s.pool.Query(ctx, `
		SELECT day, view, dims, events, weight, failures, installs, durations, installs_distinct FROM rollup_cells
		WHERE (coalesce(cardinality($1::text[]), 0) = 0 OR view = ANY($1))
		  AND ($2 = '' OR day >= $2) AND ($3 = '' OR day <= $3)
		ORDER BY day, view, dims`, q.Views, q.From, q.To)
	if err != nil {
		return nil, fmt.Errorf("postgres: rollup cells: %w", classify(err))
	}
	defer rows.Close()
	var out []*rollup.Cell
	for rows.Next() {
		var k rollup.Key
		var events, weight, failures int64
		var e rollup.Encoded
		if err := rows.Scan(&k.Day, &k.View, &k.Dims, &events, &weight, &failures, &e.Installs, &e.Durations, &e.Distinct); err != nil {
			return nil, fmt.Errorf("postgres: rollup cells: %w", classify(err))
		}
		c, err := rollup.DecodeCell(k, events, weight, failures, e)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: rollup cells: %w", classify(err))
	}
	// The database may collate text differently from Go's byte order.
	rollup.SortCells(out)
	return out, nil
}

func (r *RollupStore) Certs(ctx context.Context, view string) ([]rollup.Cert, error) {
	rows, err := r.s.pool.Query(ctx, `
		SELECT id, subject, issuer, not_before, not_after, self_signed, der
		FROM rollup_certs WHERE view = $1 ORDER BY id`, view)
	if err != nil {
		return nil, fmt.Errorf("postgres: rollup certs: %w", classify(err))
	}
	defer rows.Close()
	var out []rollup.Cert
	for rows.Next() {
		c := rollup.Cert{View: view}
		var nb, na *time.Time
		if err := rows.Scan(&c.ID, &c.Subject, &c.Issuer, &nb, &na, &c.SelfSigned, &c.DER); err != nil {
			return nil, fmt.Errorf("postgres: rollup certs: %w", classify(err))
		}
		if nb != nil {
			c.NotBefore = nb.UTC()
		}
		if na != nil {
			c.NotAfter = na.UTC()
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: rollup certs: %w", classify(err))
	}
	sortCerts(out)
	return out, nil
}

func (r *RollupStore) Reset(ctx context.Context) error {
	if _, err := r.s.pool.Exec(ctx, `TRUNCATE rollup_cells, rollup_certs, rollup_checkpoints`); err != nil {
		return fmt.Errorf("postgres: rollup reset: %w", classify(err))
	}
	return nil
}

func (r *RollupStore) HashKey(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	if _, err := r.s.pool.Exec(ctx, `INSERT INTO rollup_key (id, key) VALUES (1, $1) ON CONFLICT DO NOTHING`, fresh); err != nil {
		return nil, fmt.Errorf("postgres: rollup key: %w", classify(err))
	}
	var key []byte
	if err := r.s.pool.QueryRow(ctx, `SELECT key FROM rollup_key WHERE id = 1`).Scan(&key); err != nil {
		return nil, fmt.Errorf("postgres: rollup key: %w", classify(err))
	}
	return key, nil
}
