package ingest

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/geo"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/wire"
)

func (s *Server) handleSubmit() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			s.shed(w, retryable(http.StatusServiceUnavailable, wire.CodeUnavailable, "server is shutting down", 5))
			return
		}
		if err := s.admit.acquire(r.Context()); err != nil {
			s.shed(w, err)
			return
		}
		defer s.admit.release()
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()
		res := &reservation{a: s.admit}
		defer res.free()

		body, err := s.submit(w, r, res)
		if err != nil {
			var ae *apiError
			if errors.As(err, &ae) && ae.RetryAfter > 0 {
				s.shed(w, ae)
				return
			}
			if ae != nil {
				// Only the code: messages can quote what the client sent.
				s.log.Debug("submission refused", "status", ae.Status, "code", ae.Code)
			} else {
				s.log.Error("submission failed", "err", err)
			}
			writeError(w, err)
			return
		}
		wire.WriteRaw(w, http.StatusOK, body)
	})
}

func (s *Server) shed(w http.ResponseWriter, err *apiError) {
	s.metrics.shed.WithLabelValues(err.Code).Inc()
	writeError(w, err)
}

// submit does the work of one submission and returns the response body.
func (s *Server) submit(w http.ResponseWriter, r *http.Request, res *reservation) ([]byte, error) {
	buf, err := readBody(w, r, &s.limits, res)
	if err != nil {
		return nil, err
	}
	defer putBuffer(buf)
	if r.ContentLength > 0 {
		s.metrics.bodyBytes.Observe(float64(r.ContentLength))
	}
	s.metrics.decompressed.Observe(float64(len(*buf)))
	if err := checkText(*buf, s.limits.MaxDepth); err != nil {
		return nil, err
	}
	batch, malformed, aerr := decodeBatch(*buf, s.limits.MaxEvents)
	if aerr != nil {
		return nil, aerr
	}
	s.metrics.batchEvents.Observe(float64(len(batch.Events)))
	if err := s.checkEnvelope(&batch); err != nil {
		return nil, err
	}

	now := s.deps.Now()
	sub := &provision.Submission{
		BatchID:         batch.ID,
		InstallationID:  batch.InstallationID,
		Region:          batch.Region,
		ManifestVersion: batch.ManifestVersion,
		ReceivedAt:      now,
	}
	var loc geo.Location
	if addr, ok := s.deps.ClientAddr(r); ok {
		loc = s.deps.Geo.Lookup(addr)
	}
	// From here on the address is gone: only the location travels.

	resp := wire.SubmitAnswer{BatchID: batch.ID, Rejected: []wire.Rejection{}}
	resp.Rejected, sub.Events = s.checkEvents(&batch, malformed, now, resp.Rejected)
	resp.Rejected = quoteNothing(s.deps.Manifest, resp.Rejected)
	AddLocation(s.deps.Manifest, sub.Region, loc, sub.Events)
	resp.Accepted = len(sub.Events)
	body, err := json.Marshal(&resp)
	if err != nil {
		return nil, err
	}
	sub.Response = body

	start := time.Now()
	stored, dup, err := s.deps.Log.Append(r.Context(), sub)
	s.metrics.appendDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		s.appendFailing.Store(true)
		if r.Context().Err() == nil {
			s.log.Error("append to the log failed", "err", err, "events", len(sub.Events))
		}
		// The data is not at fault: the agent keeps the batch and retries.
		// A log that knows how long it needs says so.
		var busy *wire.Error
		if errors.As(err, &busy) && busy.Retryable() && busy.RetryAfter > 0 {
			return nil, busy
		}
		if errors.Is(err, provision.ErrUnavailable) {
			return nil, retryable(http.StatusServiceUnavailable, wire.CodeUnavailable, "the store cannot take the batch now", 5)
		}
		return nil, retryable(http.StatusServiceUnavailable, wire.CodeUnavailable, "the batch could not be stored", 5)
	}
	s.appendFailing.Store(false)
	if dup {
		s.metrics.duplicates.Inc()
		return wire.MarkDuplicate(stored), nil
	}
	s.log.Debug("submission stored", "batch_id", batch.ID, "accepted", resp.Accepted, "rejected", len(resp.Rejected),
		"country", loc.Country)
	s.metrics.accepted.Add(float64(resp.Accepted))
	for _, rej := range resp.Rejected {
		s.metrics.rejected.WithLabelValues(rej.Code).Inc()
	}
	return body, nil
}

// checkEnvelope rejects a batch that is wrong as a whole.
func (s *Server) checkEnvelope(b *provision.Batch) error {
	if n := len(b.ManifestVersion); n == 0 || n > 64 {
		return errorf(http.StatusBadRequest, wire.CodeBadBatch, "manifest_version must be 1 to 64 characters")
	}
	envelope := *b
	envelope.Events = nil
	vs := s.deps.Manifest.CheckBatch(&envelope)
	if len(vs) == 0 {
		return nil
	}
	v := vs[0]
	code := string(v.Code)
	if v.Code == manifest.CodeBadEvent {
		code = wire.CodeBadBatch
	}
	return errorf(http.StatusBadRequest, code, v.Path+": "+v.Message)
}

// checkEvents validates each event and returns the rejections and the
// accepted events. Every event gets at most one rejection: the first
// reason is enough for the agent and bounds the response.
func (s *Server) checkEvents(b *provision.Batch, malformed map[int]string, now time.Time, rejected []wire.Rejection) ([]wire.Rejection, []provision.Event) {
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
