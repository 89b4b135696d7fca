package natslog

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/provisionhq/provision"
)

// Limits of one message. A submission is already bounded by ingest; these
// bound what a worker will decode whatever was put on the stream.
const (
	// maxEvents per message follows from how Record.Seq is built: the
	// stream sequence times seqStride plus the event's index.
	seqStride       = 1 << 16
	maxEvents       = seqStride - 1
	maxCompressed   = 8 << 20
	maxDecompressed = 64 << 20
	maxBatchID      = 256
	formatVersion   = 1
)

// message is one submission as it travels on the stream. Response travels
// with it so a resend can be answered from the stream alone.
type message struct {
	V               int               `json:"v"`
	BatchID         string            `json:"batch_id"`
	InstallationID  string            `json:"installation_id"`
	Region          string            `json:"region"`
	ManifestVersion string            `json:"manifest_version"`
	Country         string            `json:"country,omitempty"`
	Subdivision     string            `json:"subdivision,omitempty"`
	ReceivedAt      time.Time         `json:"received_at"`
	Events          []provision.Event `json:"events"`
	Response        []byte            `json:"response"`
}

var (
	encoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	decoder, _ = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxDecompressed), zstd.WithDecoderConcurrency(0))
)

// ErrMalformed marks a message that cannot be decoded; retrying will not
// help, so workers move it to the dead-letter stream.
var ErrMalformed = errors.New("malformed log message")

// checkBatchID refuses ids that cannot be a NATS header value.
func checkBatchID(id string) error {
	if id == "" || len(id) > maxBatchID {
		return fmt.Errorf("natslog: batch id must have 1 to %d bytes", maxBatchID)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] == 0x7f {
			return errors.New("natslog: batch id contains a control character")
		}
	}
	return nil
}

// msgID is the JetStream deduplication id of a submission. Batch ids are
// idempotence keys of one installation, so the id covers both; hashed,
// so that the header does not repeat the installation id.
func msgID(s *provision.Submission) string {
	h := sha256.New()
	h.Write([]byte(s.InstallationID))
	h.Write([]byte{0})
	h.Write([]byte(s.BatchID))
	return hex.EncodeToString(h.Sum(nil))
}

// encode returns the compressed body of a submission.
func encode(s *provision.Submission) ([]byte, error) {
	if err := checkBatchID(s.BatchID); err != nil {
		return nil, err
	}
	if len(s.Events) > maxEvents {
		return nil, fmt.Errorf("natslog: %d events in one submission, at most %d", len(s.Events), maxEvents)
	}
	raw, err := json.Marshal(message{
		V: formatVersion, BatchID: s.BatchID, InstallationID: s.InstallationID, Region: s.Region,
		ManifestVersion: s.ManifestVersion, Country: s.Country, Subdivision: s.Subdivision,
		ReceivedAt: s.ReceivedAt, Events: s.Events, Response: s.Response,
	})
	if err != nil {
		return nil, fmt.Errorf("natslog: encode: %w", err)
	}
	body := encoder.EncodeAll(raw, make([]byte, 0, len(raw)/4))
	if len(body) > maxCompressed {
		return nil, fmt.Errorf("natslog: submission is %d bytes compressed, at most %d", len(body), maxCompressed)
	}
	return body, nil
}

// decode reads a message body. Every failure wraps ErrMalformed.
func decode(body []byte) (*provision.Submission, error) {
	if len(body) > maxCompressed {
		return nil, fmt.Errorf("%w: %d bytes compressed", ErrMalformed, len(body))
	}
	raw, err := decoder.DecodeAll(body, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	// Numbers stay json.Number, as ingest decoded them.
	dec.UseNumber()
	var m message
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the message", ErrMalformed)
	}
	switch {
	case m.V != formatVersion:
		return nil, fmt.Errorf("%w: format version %d", ErrMalformed, m.V)
	case checkBatchID(m.BatchID) != nil:
		return nil, fmt.Errorf("%w: %v", ErrMalformed, checkBatchID(m.BatchID))
	case len(m.Events) > maxEvents:
		return nil, fmt.Errorf("%w: %d events", ErrMalformed, len(m.Events))
	case m.Response == nil:
		return nil, fmt.Errorf("%w: no response", ErrMalformed)
	case m.ReceivedAt.IsZero():
		return nil, fmt.Errorf("%w: no receive time", ErrMalformed)
	}
	for i, ev := range m.Events {
		if ev.ID == "" {
			return nil, fmt.Errorf("%w: event %d has no id", ErrMalformed, i)
		}
	}
	return &provision.Submission{
		BatchID: m.BatchID, InstallationID: m.InstallationID, Region: m.Region,
		ManifestVersion: m.ManifestVersion, Country: m.Country, Subdivision: m.Subdivision,
		ReceivedAt: m.ReceivedAt, Events: m.Events, Response: m.Response,
	}, nil
}
