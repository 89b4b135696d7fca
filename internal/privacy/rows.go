package privacy

import (
	"encoding/json"
	"fmt"
	"time"
)

// Every store keeps requests and the audit log in the same columns, with
// times as Unix nanoseconds and receipts as JSON; the readers here turn
// those rows into values whatever the driver. A scan argument is the Scan
// method of the driver's row.

// Rows is what the readers need of a driver's result set (database/sql and
// pgx rows both have it). The caller closes it.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// RequestColumns are the columns of the requests table ScanRequest reads,
// in its order.
const RequestColumns = `request_id, id_hash, source, status, requested_at, completed_at, removed`

// ScanRequest builds a request from one row of RequestColumns. A scan error
// is returned as it is, so the store can tell "no row" by its driver's
// sentinel.
func ScanRequest(scan func(dest ...any) error) (*Request, error) {
	var (
		r                    Request
		requested, completed int64
		removed              string
	)
	if err := scan(&r.ID, &r.IDHash, &r.Source, &r.Status, &requested, &completed, &removed); err != nil {
		return nil, err
	}
	r.RequestedAt = time.Unix(0, requested).UTC()
	if completed != 0 {
		r.CompletedAt = time.Unix(0, completed).UTC()
	}
	if removed != "" {
		r.Removed = new(Removed)
		if err := json.Unmarshal([]byte(removed), r.Removed); err != nil {
			return nil, fmt.Errorf("erasure request %q: receipt: %w", r.ID, err)
		}
	}
	return &r, nil
}

// PendingColumns are the columns of the requests table ReadPending reads,
// in its order.
const PendingColumns = `request_id, id_hash, source, status, requested_at, pending_installation_id`

// ReadPending reads every row of PendingColumns.
func ReadPending(rows Rows) ([]Pending, error) {
	return readAll(rows, func(scan func(dest ...any) error) (Pending, error) {
		var (
			p         Pending
			requested int64
			id        *string
		)
		if err := scan(&p.Request.ID, &p.Request.IDHash, &p.Request.Source, &p.Request.Status, &requested, &id); err != nil {
			return p, err
		}
		p.Request.RequestedAt = time.Unix(0, requested).UTC()
		if id != nil {
			p.InstallationID = *id
		}
		return p, nil
	})
}

// NoticeColumns are the columns of the notices table ReadNotices reads, in
// its order.
const NoticeColumns = `request_id, recipient, installation_id, state, attempts, next_at, confirmed_at, last_error`

// ReadNotices reads every row of NoticeColumns. A confirmed notice no
// longer holds the installation id (NULL).
func ReadNotices(rows Rows) ([]Notice, error) {
	return readAll(rows, func(scan func(dest ...any) error) (Notice, error) {
		var (
			n                 Notice
			id                *string
			next, confirmedAt int64
		)
		if err := scan(&n.RequestID, &n.Recipient, &id, &n.State, &n.Attempts, &next, &confirmedAt, &n.LastError); err != nil {
			return n, err
		}
		if id != nil {
			n.InstallationID = *id
		}
		n.NextAt = time.Unix(0, next).UTC()
		if confirmedAt != 0 {
			n.ConfirmedAt = time.Unix(0, confirmedAt).UTC()
		}
		return n, nil
	})
}

// ReadAudit reads every row of AuditColumns.
func ReadAudit(rows Rows) ([]AuditEntry, error) { return readAll(rows, ScanAuditEntry) }

func readAll[T any](rows Rows, scan func(func(dest ...any) error) (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan(rows.Scan)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
