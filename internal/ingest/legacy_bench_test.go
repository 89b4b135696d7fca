package ingest

// The decoder this package used before the strict one, kept for the
// benchmark's same-run baseline only: encoding/json into provision.Batch
// (Fields as map[string]any), after a pass that checks UTF-8 and depth,
// then validation of the decoded batch.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/wire"
)

// checkText refuses what encoding/json would silently repair or take
// long over: invalid UTF-8 (it would become U+FFFD) and deep nesting.
func legacyCheckText(b []byte, maxDepth int) *apiError {
	if !utf8.Valid(b) {
		return errorf(http.StatusBadRequest, wire.CodeBadEncoding, "body is not valid UTF-8")
	}
	depth := 0
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			depth++
			if depth > maxDepth {
				return errorf(http.StatusBadRequest, wire.CodeTooDeep, fmt.Sprintf("JSON nested deeper than %d levels", maxDepth))
			}
		case '}', ']':
			depth--
		}
	}
	return nil
}

// decodeBatch decodes the body. A batch whose envelope is wrong is an
// error; an event that does not decode is reported in bad (index → message)
// and left zero in the batch, so the other events of the batch still count.
func legacyDecodeBatch(b []byte, maxEvents int) (batch provision.Batch, bad map[int]string, _ *apiError) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	d.DisallowUnknownFields()
	err := d.Decode(&batch)
	if err == nil {
		if err := legacyTrailing(d); err != nil {
			return batch, nil, err
		}
		if len(batch.Events) > maxEvents {
			return batch, nil, legacyTooMany(len(batch.Events), maxEvents)
		}
		return batch, nil, nil
	}
	// Slow path, for bad input only: decode the envelope with the events
	// left raw, then each event alone.
	var env struct {
		provision.Batch
		Events []json.RawMessage `json:"events"`
	}
	d = json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	d.DisallowUnknownFields()
	if err := d.Decode(&env); err != nil {
		return batch, nil, legacyJSONError(err)
	}
	if err := legacyTrailing(d); err != nil {
		return batch, nil, err
	}
	if len(env.Events) > maxEvents {
		return batch, nil, legacyTooMany(len(env.Events), maxEvents)
	}
	batch = env.Batch
	batch.Events = make([]provision.Event, len(env.Events))
	bad = map[int]string{}
	for i, raw := range env.Events {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.UseNumber()
		d.DisallowUnknownFields()
		if err := d.Decode(&batch.Events[i]); err != nil {
			batch.Events[i] = provision.Event{}
			bad[i] = legacyJSONError(err).Message
		}
	}
	return batch, bad, nil
}

func legacyTrailing(d *json.Decoder) *apiError {
	if _, err := d.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, wire.CodeBadJSON, "data after the batch object")
	}
	return nil
}

func legacyTooMany(n, limit int) *apiError {
	return errorf(http.StatusBadRequest, wire.CodeTooManyEvents, fmt.Sprintf("%d events, at most %d allowed per batch", n, limit))
}

func legacyJSONError(err error) *apiError {
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field ") {
		return errorf(http.StatusBadRequest, wire.CodeUnknownField, strings.TrimPrefix(msg, "json: "))
	}
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "…"
	}
	return errorf(http.StatusBadRequest, wire.CodeBadJSON, strings.TrimPrefix(msg, "json: "))
}

// checkEvents validates each event and returns the rejections and the
// accepted events. Every event gets at most one rejection: the first
// reason is enough for the agent and bounds the response.
func (s *Server) legacyCheckEvents(b *provision.Batch, malformed map[int]string, now time.Time, rejected []wire.Rejection) ([]wire.Rejection, []provision.Event) {
	accepted := b.Events[:0:0]
	if len(rejected) == 0 {
		accepted = make([]provision.Event, 0, len(b.Events))
	}
	oldest, newest := now.Add(-s.limits.MaxEventAge), now.Add(s.limits.MaxClockSkew)
	seen := make(map[string]struct{}, len(b.Events))
	var vs []manifest.Violation
	for i := range b.Events {
		ev := &b.Events[i]
		if msg, bad := malformed[i]; bad {
			rejected = append(rejected, wire.Rejection{Index: i, Code: wire.RejectMalformed, Message: msg})
			continue
		}
		vs = s.deps.Manifest.CheckEvent(vs[:0], i, ev, b.Region)
		if len(vs) > 0 {
			rejected = append(rejected, wire.Rejection{Index: i, Code: string(vs[0].Code), Path: vs[0].Path, Message: vs[0].Message})
			continue
		}
		if ev.Time.Before(oldest) || ev.Time.After(newest) {
			rejected = append(rejected, wire.Rejection{Index: i, Code: wire.RejectBadTime, Path: "time", Message: "event time is outside the accepted window"})
			continue
		}
		if _, dup := seen[ev.ID]; dup {
			rejected = append(rejected, wire.Rejection{Index: i, Code: wire.RejectDuplicateEvent, Path: "id", Message: "event id appears earlier in the batch"})
			continue
		}
		seen[ev.ID] = struct{}{}
		accepted = append(accepted, *ev)
	}
	slices.SortFunc(rejected, func(a, b wire.Rejection) int { return a.Index - b.Index })
	return rejected, accepted
}
