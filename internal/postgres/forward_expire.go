package postgres

import (
	"context"
	"fmt"

	"github.com/provisionhq/provision/internal/forward"
)

var _ forward.DeadLetterExpirer = (*ForwardState)(nil)

// ExpireDeadLetters implements forward.DeadLetterExpirer.
func (f *ForwardState) ExpireDeadLetters(ctx context.Context, before string) (int, error) {
	tag, err := f.s.pool.Exec(ctx, `DELETE FROM forward_dead_letters WHERE day < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("postgres: expire dead letters: %w", classify(err))
	}
	return int(tag.RowsAffected()), nil
}
