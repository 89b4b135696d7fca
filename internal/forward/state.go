package forward

import (
	"context"
	"time"
)

// State is what the forwarders keep besides their checkpoints: which
// installation was counted on which day for which recipient, and the dead
// letters. The embedded store implements it (internal/sqlite); every
// implementation must pass the contract tests in this package.
type State interface {
	// Sent reports whether the installation was counted for the recipient on
	// the day (YYYY-MM-DD, UTC).
	Sent(ctx context.Context, recipient, installationID, day string) (bool, error)
	// MarkSent records that it was. Marking twice is not an error.
	MarkSent(ctx context.Context, recipient, installationID, day string, at time.Time) error
	// PruneSent drops the markers of days before the given day and returns
	// how many went. Markers name installations, so they are kept no longer
	// than the once-per-day rule needs them.
	PruneSent(ctx context.Context, before string) (int, error)

	// AddDeadLetter stores a count that could not be delivered and sets its ID.
	AddDeadLetter(ctx context.Context, dl *DeadLetter) error
	// DeadLetters returns up to limit dead letters of the recipient, oldest first.
	DeadLetters(ctx context.Context, recipient string, limit int) ([]DeadLetter, error)
	// DeleteDeadLetter removes one; removing a missing one is not an error.
	DeleteDeadLetter(ctx context.Context, recipient string, id int64) error
	// CountDeadLetters returns how many dead letters the recipient has.
	CountDeadLetters(ctx context.Context, recipient string) (int, error)

	// Forget erases everything kept about the installation: markers and
	// dead letters. Erasure calls it.
	Forget(ctx context.Context, installationID string) error
}

// DeadLetter is a count that was not delivered: after the bounded number of
// attempts, or at once when the recipient refused it for good.
type DeadLetter struct {
	ID             int64
	Recipient      string
	InstallationID string
	Day            string
	Seq            int64
	Count          []byte // the Count as JSON, so it can be sent again without the log
	Attempts       int
	Reason         string // the last error; never holds an installation id or a secret
	Retryable      bool   // whether the last failure was one a later attempt may overcome
	CreatedAt      time.Time
}

// DeadLetterExpirer is a State whose dead letters expire: a dead letter
// holds an installation id and its fields, so it is kept no longer than the
// data it was made of. The privacy owners registry runs it with the
// retention job.
type DeadLetterExpirer interface {
	// ExpireDeadLetters drops the dead letters of days before the given day
	// (YYYY-MM-DD) and returns how many went.
	ExpireDeadLetters(ctx context.Context, before string) (int, error)
}
