package rollup

import "context"

// DayMark asks for one day's cells to be recomputed because of one erasure
// request.
type DayMark struct {
	Day     string // YYYY-MM-DD
	Request string // the erasure request's id
}

// MarkStore keeps the days to refresh in the store, so that a process
// stopping between an erasure and the refresh still refreshes them when it
// starts again. An erasure holds the days of its installation before it
// deletes anything and releases them once complete: a held day is not
// refreshed, since the events it would drop may still be there. The
// SQLite and PostgreSQL rollup stores implement it.
type MarkStore interface {
	// MarkDays records the days for the request: not yet due (held), or,
	// with due, due together with every day the request holds (released).
	MarkDays(ctx context.Context, request string, days []string, due bool) error
	// DueDays returns the marks that are due.
	DueDays(ctx context.Context) ([]DayMark, error)
	// DropMarks deletes the marks, once their days were refreshed.
	DropMarks(ctx context.Context, marks []DayMark) error
}
