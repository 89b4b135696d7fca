package provision

import (
	"context"
	"errors"
	"time"
)

// Submission is a validated batch, ready to be appended to the log: only the
// accepted events. The location the server derived from the connection is
// in the fields of the events that carry it (Event.Location); the client
// address is not here: it never goes further than the lookup.
type Submission struct {
	BatchID         string
	InstallationID  string
	Region          string
	ManifestVersion string
	ReceivedAt      time.Time
	Events          []Event
	// Response is the answer given to the agent; a resend of the same batch
	// id gets these bytes again, so the answer to a resend equals the first.
	Response []byte
}

// Record is one accepted event as the log and the store hold it.
type Record struct {
	Seq            int64 // position in the log; increases with every append
	BatchID        string
	InstallationID string
	Region         string
	Country        string // Event.Location: "" for an event that carries none
	Subdivision    string
	ReceivedAt     time.Time
	Event          Event
}

// NewRecord is the record of one event of a submission at seq. Every log
// builds its records here, so they agree on what a record holds.
func NewRecord(seq int64, s *Submission, ev Event) Record {
	country, subdivision := ev.Location()
	return Record{
		Seq: seq, BatchID: s.BatchID, InstallationID: s.InstallationID, Region: s.Region,
		Country: country, Subdivision: subdivision, ReceivedAt: s.ReceivedAt, Event: ev,
	}
}

// Log is the durable, ordered log of accepted events. Every derived view —
// event store, rollups, forwarders, privacy jobs — reads it from its own
// checkpoint and can be replayed.
type Log interface {
	// Append makes the submission durable before it returns. When the batch
	// id was appended before, it stores nothing and returns the earlier
	// response with duplicate set.
	Append(ctx context.Context, s *Submission) (response []byte, duplicate bool, err error)
	// Read returns up to limit records with Seq > after, in Seq order.
	Read(ctx context.Context, after int64, limit int) ([]Record, error)
	// Head returns the highest Seq appended so far, 0 for an empty log.
	Head(ctx context.Context) (int64, error)
}

// Checkpoints keeps each consumer's position in the log.
type Checkpoints interface {
	Checkpoint(ctx context.Context, consumer string) (int64, error)
	SetCheckpoint(ctx context.Context, consumer string, seq int64) error
}

// Errors that callers test with errors.Is.
var (
	// ErrUnavailable means the engine cannot take work now; the caller may
	// retry later (the server answers 503 with Retry-After).
	ErrUnavailable = errors.New("store unavailable")
	// ErrNotFound means the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
)
