package privacy

import (
	"errors"
	"strings"
	"testing"
)

// row scans fixed values into the pointers a reader passes, as a driver would.
func row(vals ...any) func(dest ...any) error {
	return func(dest ...any) error {
		for i, d := range dest {
			switch p := d.(type) {
			case *string:
				*p = vals[i].(string)
			case *int64:
				*p = vals[i].(int64)
			case **string:
				if vals[i] == nil {
					*p = nil
				} else {
					s := vals[i].(string)
					*p = &s
				}
			default:
				panic("unexpected destination")
			}
		}
		return nil
	}
}

type fakeRows struct {
	rows []func(dest ...any) error
	i    int
	err  error
}

func (r *fakeRows) Next() bool             { r.i++; return r.i <= len(r.rows) }
func (r *fakeRows) Scan(dest ...any) error { return r.rows[r.i-1](dest...) }
func (r *fakeRows) Err() error             { return r.err }

func TestScanRequest(t *testing.T) {
	r, err := ScanRequest(row("r1", "h", SourceDevice, StatusComplete, int64(5), int64(9), `{"events":{"task":2}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.ID != "r1" || r.RequestedAt.UnixNano() != 5 || r.CompletedAt.UnixNano() != 9 || r.Removed.Events["task"] != 2 {
		t.Errorf("got %+v", r)
	}
	r, err = ScanRequest(row("r2", "h", SourceDevice, StatusPending, int64(5), int64(0), ""))
	if err != nil || !r.CompletedAt.IsZero() || r.Removed != nil {
		t.Errorf("pending: %+v, %v", r, err)
	}
	if _, err := ScanRequest(row("r3", "h", SourceDevice, StatusComplete, int64(5), int64(9), "{")); err == nil || !strings.Contains(err.Error(), `"r3": receipt`) {
		t.Errorf("bad receipt: %v", err)
	}
	boom := errors.New("no rows")
	if _, err := ScanRequest(func(...any) error { return boom }); err != boom {
		t.Errorf("scan error not passed as it is: %v", err)
	}
}

func TestReadPendingAndAudit(t *testing.T) {
	got, err := ReadPending(&fakeRows{rows: []func(...any) error{
		row("a", "h", SourceDevice, StatusPending, int64(1), "install-1"),
		row("b", "h", SourceOperator, StatusPending, int64(2), nil),
	}})
	if err != nil || len(got) != 2 || got[0].InstallationID != "install-1" || got[1].InstallationID != "" || got[1].Request.RequestedAt.UnixNano() != 2 {
		t.Errorf("got %+v, %v", got, err)
	}
	boom := errors.New("boom")
	if _, err := ReadPending(&fakeRows{err: boom}); !errors.Is(err, boom) {
		t.Errorf("rows error: %v", err)
	}
	if _, err := ReadPending(&fakeRows{rows: []func(...any) error{func(...any) error { return boom }}}); !errors.Is(err, boom) {
		t.Errorf("scan error: %v", err)
	}
	if _, err := ReadAudit(&fakeRows{rows: []func(...any) error{func(...any) error { return boom }}}); !errors.Is(err, boom) {
		t.Errorf("audit scan error: %v", err)
	}
}

func TestAppendAudit(t *testing.T) {
	e := &AuditEntry{RequestID: "r", IDHash: "h", Source: SourceDevice, Removed: newRemoved()}
	var row []any
	err := AppendAudit(e, `{"events":{}}`, func() (int64, string, error) { return 6, "prevhash", nil },
		func(r ...any) error { row = r; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 7 || e.Prev != "prevhash" || e.Hash == "" || len(row) != 9 || row[0] != int64(7) || row[6] != `{"events":{}}` || row[8] != e.Hash {
		t.Errorf("entry %+v, row %v", e, row)
	}
	if h, _ := entryHash(e); h != e.Hash {
		t.Error("the stored hash is not the entry's")
	}
	boom := errors.New("boom")
	if err := AppendAudit(&AuditEntry{}, "", func() (int64, string, error) { return 0, "", boom }, nil); !errors.Is(err, boom) {
		t.Errorf("head error: %v", err)
	}
	err = AppendAudit(&AuditEntry{}, "", func() (int64, string, error) { return 0, "", nil }, func(...any) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("insert error: %v", err)
	}
}
