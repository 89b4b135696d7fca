package agent

import (
	"encoding/json"
	"fmt"
	"time"
)

// SentEntry is one request that left the machine, as the local sent log
// keeps it: the batch exactly as it was sent, and what the server answered.
type SentEntry struct {
	Kind      string          `json:"kind"`   // batch or deletion
	Status    string          `json:"status"` // accepted, refused, deletion_pending, deletion_complete
	Server    string          `json:"server"`
	SentAt    time.Time       `json:"sent_at"`
	BatchID   string          `json:"batch_id,omitempty"`
	Encoding  string          `json:"encoding,omitempty"`
	RawBytes  int             `json:"raw_bytes,omitempty"`
	WireBytes int             `json:"wire_bytes,omitempty"`
	Events    int             `json:"events,omitempty"`
	Accepted  int             `json:"accepted,omitempty"`
	Duplicate bool            `json:"duplicate,omitempty"`
	Rejected  []SentRejection `json:"rejected,omitempty"`
	Error     *SentError      `json:"error,omitempty"`
	Batch     json.RawMessage `json:"batch,omitempty"`

	RequestID string `json:"request_id,omitempty"`
}

// SentRejection is one event the server refused inside an accepted batch;
// the agent dropped it.
type SentRejection struct {
	Index   int    `json:"index"`
	Type    string `json:"type,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// SentError is why the server refused a whole request.
type SentError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *SentEntry) marshal() []byte {
	b, err := json.Marshal(e)
	if err != nil {
		// Every field marshals; this cannot happen.
		panic(fmt.Sprintf("agent: sent entry: %v", err))
	}
	return b
}

// Sent returns the newest entries of the local sent log, oldest first;
// last <= 0 returns all that are kept.
func (a *Agent) Sent(last int) ([]SentEntry, error) {
	raw, err := a.store.Sent(last)
	if err != nil {
		return nil, err
	}
	out := make([]SentEntry, 0, len(raw))
	for _, r := range raw {
		var e SentEntry
		if err := json.Unmarshal(r, &e); err != nil {
			return nil, fmt.Errorf("agent: sent log unreadable: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}
