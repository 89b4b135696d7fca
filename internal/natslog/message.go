package natslog

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/batchcodec"
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

// message is one submission as earlier versions wrote it to the stream
// (format 1: this JSON, compressed with zstd); new messages are of format 2
// (see envelope). Response travels with it so a resend can be answered
// from the stream alone.
type message struct {
	V               int    `json:"v"`
	BatchID         string `json:"batch_id"`
	InstallationID  string `json:"installation_id"`
	Region          string `json:"region"`
	ManifestVersion string `json:"manifest_version"`
	// Country and Subdivision are read from messages of earlier
	// servers and ignored: the location is in the events that carry it.
	Country     string            `json:"country,omitempty"`
	Subdivision string            `json:"subdivision,omitempty"`
	ReceivedAt  time.Time         `json:"received_at"`
	Events      []provision.Event `json:"events"`
	Response    []byte            `json:"response"`
}

// decoder reads messages of format 1, which earlier versions wrote.
var decoder, _ = zstd.NewReader(nil, zstd.WithDecoderMaxMemory(maxDecompressed), zstd.WithDecoderConcurrency(0))

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

// envelope is what a message of format 2 says of its submission, in JSON
// before the payload. The events follow in their stored form
// (internal/batchcodec), already compressed: ingest encodes them once and
// the worker writes the bytes to PostgreSQL without decoding them. The
// location is in the events that carry it, so the envelope has none.
type envelope struct {
	V               int       `json:"v"`
	BatchID         string    `json:"batch_id"`
	InstallationID  string    `json:"installation_id"`
	Region          string    `json:"region"`
	ManifestVersion string    `json:"manifest_version"`
	ReceivedAt      time.Time `json:"received_at"`
	Response        []byte    `json:"response"`
	Events          int       `json:"events"`
	DayMin          int64     `json:"day_min"`
	DayMax          int64     `json:"day_max"`
	Types           string    `json:"types"`
	Last            int64     `json:"last"`
}

// formatEncoded starts a message of format 2: the byte, the envelope's
// length (uvarint), the envelope, the payload. A zstd frame (format 1)
// never starts with it.
const formatEncoded = 2

// maxEnvelope bounds the JSON envelope of a format 2 message.
const maxEnvelope = 1 << 20

// encode returns the body of a submission's message.
func encode(s *provision.Submission) ([]byte, error) {
	if err := checkBatchID(s.BatchID); err != nil {
		return nil, err
	}
	if len(s.Events) > maxEvents {
		return nil, fmt.Errorf("natslog: %d events in one submission, at most %d", len(s.Events), maxEvents)
	}
	enc, err := batchcodec.EncodeEvents(s.Events)
	if err != nil {
		return nil, fmt.Errorf("natslog: encode: %w", err)
	}
	env := envelope{
		V: formatEncoded, BatchID: s.BatchID, InstallationID: s.InstallationID, Region: s.Region,
		ManifestVersion: s.ManifestVersion, ReceivedAt: s.ReceivedAt, Response: s.Response,
	}
	var payload []byte
	if enc != nil {
		env.Events, env.DayMin, env.DayMax, env.Types, env.Last = enc.Events, enc.Summary.DayMin, enc.Summary.DayMax, enc.Summary.Types, enc.Summary.Last
		payload = enc.Payload
	}
	head, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("natslog: encode: %w", err)
	}
	body := make([]byte, 0, 1+binary.MaxVarintLen64+len(head)+len(payload))
	body = append(body, formatEncoded)
	body = binary.AppendUvarint(body, uint64(len(head)))
	body = append(append(body, head...), payload...)
	if len(body) > maxCompressed {
		return nil, fmt.Errorf("natslog: submission is %d bytes compressed, at most %d", len(body), maxCompressed)
	}
	return body, nil
}

// decode reads a message body. Every failure wraps ErrMalformed. A message
// of format 2 returns the submission without its events and the events in
// their stored form; one of format 1 (JSON in zstd, as earlier versions
// wrote) returns the events decoded and no encoded form.
func decode(body []byte) (*provision.Submission, *batchcodec.Encoded, error) {
	if len(body) > maxCompressed {
		return nil, nil, fmt.Errorf("%w: %d bytes compressed", ErrMalformed, len(body))
	}
	if len(body) > 0 && body[0] == formatEncoded {
		return decodeEncoded(body[1:])
	}
	sub, err := decodeJSON(body)
	return sub, nil, err
}

func decodeEncoded(body []byte) (*provision.Submission, *batchcodec.Encoded, error) {
	n, k := binary.Uvarint(body)
	if k <= 0 || n > maxEnvelope || n > uint64(len(body)-k) {
		return nil, nil, fmt.Errorf("%w: bad envelope length", ErrMalformed)
	}
	head, payload := body[k:k+int(n)], body[k+int(n):]
	dec := json.NewDecoder(bytes.NewReader(head))
	dec.DisallowUnknownFields()
	var m envelope
	if err := dec.Decode(&m); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, nil, fmt.Errorf("%w: data after the envelope", ErrMalformed)
	}
	switch {
	case m.V != formatEncoded:
		return nil, nil, fmt.Errorf("%w: format version %d", ErrMalformed, m.V)
	case checkBatchID(m.BatchID) != nil:
		return nil, nil, fmt.Errorf("%w: %v", ErrMalformed, checkBatchID(m.BatchID))
	case m.Events < 0 || m.Events > maxEvents:
		return nil, nil, fmt.Errorf("%w: %d events", ErrMalformed, m.Events)
	case m.Events > 0 && (len(payload) == 0 || m.Last != int64(m.Events-1) || m.DayMin > m.DayMax):
		return nil, nil, fmt.Errorf("%w: events without a consistent payload", ErrMalformed)
	case m.Events == 0 && len(payload) != 0:
		return nil, nil, fmt.Errorf("%w: payload without events", ErrMalformed)
	case m.Response == nil:
		return nil, nil, fmt.Errorf("%w: no response", ErrMalformed)
	case m.ReceivedAt.IsZero():
		return nil, nil, fmt.Errorf("%w: no receive time", ErrMalformed)
	}
	sub := &provision.Submission{
		BatchID: m.BatchID, InstallationID: m.InstallationID, Region: m.Region,
		ManifestVersion: m.ManifestVersion, ReceivedAt: m.ReceivedAt, Response: m.Response,
	}
	if m.Events == 0 {
		return sub, nil, nil
	}
	return sub, &batchcodec.Encoded{
		Payload: payload, Events: m.Events,
		Summary: batchcodec.Summary{DayMin: m.DayMin, DayMax: m.DayMax, Types: m.Types, Last: m.Last},
	}, nil
}

// entries returns the events of a decoded message with their offsets.
func entries(sub *provision.Submission, enc *batchcodec.Encoded) ([]batchcodec.Entry, error) {
	if enc == nil {
		return batchcodec.Entries(sub.Events), nil
	}
	es, err := batchcodec.Decode(enc.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(es) != enc.Events {
		return nil, fmt.Errorf("%w: %d events, the envelope says %d", ErrMalformed, len(es), enc.Events)
	}
	return es, nil
}

// decodeJSON reads a message of format 1.
func decodeJSON(body []byte) (*provision.Submission, error) {
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
		ManifestVersion: m.ManifestVersion, ReceivedAt: m.ReceivedAt, Events: m.Events, Response: m.Response,
	}, nil
}
