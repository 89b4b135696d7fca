package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/provisionhq/provision/internal/rollup"
)

var _ rollup.DaySpanner = (*RollupStore)(nil)

// DaySpan implements rollup.DaySpanner from the (view, day) index.
func (s *RollupStore) DaySpan(ctx context.Context, view, to string) (first, last string, err error) {
	var f, l sql.NullString
	err = s.db.QueryRowContext(ctx, `SELECT min(day), max(day) FROM rollup_cells WHERE view = ? AND (? = '' OR day <= ?)`,
		view, to, to).Scan(&f, &l)
	if err != nil {
		return "", "", fmt.Errorf("sqlite: rollup day span: %w", err)
	}
	return f.String, l.String, nil
}
