package sqlite

import (
	"context"
	"fmt"

	"github.com/provisionhq/provision/internal/forward"
)

var _ forward.DeadLetterExpirer = (*ForwardState)(nil)

// ExpireDeadLetters implements forward.DeadLetterExpirer.
func (s *ForwardState) ExpireDeadLetters(ctx context.Context, before string) (int, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM forward_dead_letters WHERE day < ?`, before)
	if err != nil {
		return 0, fmt.Errorf("sqlite: expire dead letters: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
