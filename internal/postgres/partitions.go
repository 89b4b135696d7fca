package postgres

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

const dayFormat = "20060102"

// partitionName is the log_batches partition holding the UTC day of t.
func partitionName(t time.Time) string { return partitionPrefix + t.UTC().Format(dayFormat) }

// partitionPrefix starts the name of every day partition of log_batches.
const partitionPrefix = "log_batches_p"

func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// ensurePartitions creates the day partitions that rows received at the given
// times need, plus PartitionsAhead days after the newest of them. It runs in
// its own short transaction before the write, because creating a partition
// locks the parent table and should not be held for a whole write.
func (s *Store) ensurePartitions(ctx context.Context, times []time.Time) error {
	want := map[string]time.Time{}
	var newest time.Time
	for _, t := range times {
		d := utcDay(t)
		want[partitionName(d)] = d
		if d.After(newest) {
			newest = d
		}
	}
	if !newest.IsZero() {
		for i := 1; i <= s.ahead; i++ {
			d := newest.AddDate(0, 0, i)
			want[partitionName(d)] = d
		}
	}
	s.mu.Lock()
	var missing []time.Time
	for name, d := range want {
		if !s.partitions[name] {
			missing = append(missing, d)
		}
	}
	s.mu.Unlock()
	if len(missing) == 0 {
		return nil
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i].Before(missing[j]) })
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Concurrent CREATE TABLE IF NOT EXISTS of the same name can
		// still collide in the catalog; one lock per schema avoids it.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext(current_schema() || '/provision/partitions'))`); err != nil {
			return err
		}
		for _, d := range missing {
			name := partitionName(d)
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&exists); err != nil {
				return err
			}
			if exists {
				continue
			}
			// name and the bounds are built from a date, never from input text.
			ddl := fmt.Sprintf(`CREATE TABLE %s PARTITION OF log_batches FOR VALUES FROM ('%s') TO ('%s')`,
				name, d.Format(time.RFC3339), d.AddDate(0, 0, 1).Format(time.RFC3339))
			if _, err := tx.Exec(ctx, ddl); err != nil {
				return fmt.Errorf("create %s: %w", name, err)
			}
			s.log.Info("created partition", "partition", name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: partitions: %w", classify(err))
	}
	s.mu.Lock()
	for _, d := range missing {
		s.partitions[partitionName(d)] = true
	}
	s.mu.Unlock()
	return nil
}

// Partitions lists the existing day partitions of the log_batches table, oldest
// first.
func (s *Store) Partitions(ctx context.Context) ([]string, error) {
	return s.names(ctx, "partitions", `
		SELECT c.relname FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'log_batches'::regclass
		ORDER BY c.relname`)
}

// DropBefore removes what was received before the UTC day of cutoff: whole
// day partitions of log_batches are dropped, and the batch keys of those
// days are deleted. It returns the partitions it dropped.
func (s *Store) DropBefore(ctx context.Context, cutoff time.Time) ([]string, error) {
	names, err := s.Partitions(ctx)
	if err != nil {
		return nil, err
	}
	limit := partitionName(utcDay(cutoff))
	var dropped []string
	for _, name := range names {
		if len(name) != len(partitionPrefix)+len(dayFormat) || name >= limit {
			continue
		}
		if _, err := s.pool.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
			return dropped, fmt.Errorf("postgres: drop %s: %w", name, classify(err))
		}
		s.mu.Lock()
		delete(s.partitions, name)
		s.mu.Unlock()
		dropped = append(dropped, name)
		s.log.Info("dropped partition", "partition", name)
	}
	day := utcDay(cutoff)
	if _, err := s.pool.Exec(ctx, `DELETE FROM batch_keys WHERE received_at < $1`, day); err != nil {
		return dropped, fmt.Errorf("postgres: retention: %w", classify(err))
	}
	return dropped, nil
}
