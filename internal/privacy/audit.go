package privacy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Seal sets e.Prev to prev and e.Hash to the SHA-256 of the entry's JSON
// form with Hash empty. Stores call it inside the transaction that appends
// the entry, with prev the Hash of the last entry ("" for the first).
func Seal(prev string, e *AuditEntry) error {
	e.Prev = prev
	h, err := entryHash(e)
	if err != nil {
		return err
	}
	e.Hash = h
	return nil
}

// AppendAudit appends e to the audit log, inside the transaction of
// CompleteErasure: it numbers e after the last entry, seals it and writes
// it. last reads the last entry's Seq and Hash (0 and "" when the log is
// empty); insert writes one row of AuditColumns, in their order. removed
// is the receipt's JSON, as it is hashed and stored.
func AppendAudit(e *AuditEntry, removed string, last func() (int64, string, error), insert func(row ...any) error) error {
	seq, prev, err := last()
	if err != nil {
		return fmt.Errorf("audit head: %w", err)
	}
	e.Seq = seq + 1
	if err := Seal(prev, e); err != nil {
		return err
	}
	if err := insert(e.Seq, e.RequestID, e.IDHash, e.Source, e.RequestedAt.UnixNano(), e.CompletedAt.UnixNano(),
		removed, e.Prev, e.Hash); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

func entryHash(e *AuditEntry) (string, error) {
	c := *e
	c.Hash = ""
	c.RequestedAt = c.RequestedAt.UTC()
	c.CompletedAt = c.CompletedAt.UTC()
	// encoding/json writes struct fields in declaration order and map keys
	// sorted, so the form is canonical.
	b, err := json.Marshal(&c)
	if err != nil {
		return "", fmt.Errorf("audit entry %d: %w", e.Seq, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// VerifyAudit reads the whole audit log and checks its chain: sequence
// numbers without gaps from 1, each Prev equal to the previous Hash, and
// each Hash recomputed. It returns the number of entries checked.
func VerifyAudit(ctx context.Context, s Store) (int64, error) {
	var (
		after int64
		prev  string
	)
	for {
		entries, err := s.Audit(ctx, after, 1000)
		if err != nil {
			return after, err
		}
		for i := range entries {
			e := &entries[i]
			if e.Seq != after+1 {
				return after, fmt.Errorf("audit log: entry %d follows %d: an entry is missing", e.Seq, after)
			}
			if e.Prev != prev {
				return after, fmt.Errorf("audit log: entry %d does not chain to entry %d", e.Seq, after)
			}
			h, err := entryHash(e)
			if err != nil {
				return after, err
			}
			if h != e.Hash {
				return after, fmt.Errorf("audit log: entry %d was altered (hash mismatch)", e.Seq)
			}
			after, prev = e.Seq, e.Hash
		}
		if len(entries) < 1000 {
			return after, nil
		}
	}
}
