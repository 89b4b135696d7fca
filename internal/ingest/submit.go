package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/geo"
	"github.com/provisionhq/provision/internal/manifest"
	"github.com/provisionhq/provision/internal/wire"
)

func (s *Server) handleSubmit() http.Handler {
	return s.limitClients(s.submitLimit, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if s.draining.Load() {
			s.shed(w, retryable(http.StatusServiceUnavailable, wire.CodeUnavailable, "server is shutting down", 5))
			return
		}
		res := &reservation{a: s.admit}
		defer res.free()
		// The body is read before a processing slot is taken: a slow
		// client holds only its connection and its buffer, never a slot,
		// and is cut off when it falls under the minimum rate.
		buf, err := readBody(w, r, &s.limits, res, start)
		if err != nil {
			s.refused(w, err)
			return
		}
		defer putBuffer(buf)
		if r.ContentLength > 0 {
			s.metrics.bodyBytes.Observe(float64(r.ContentLength))
		}
		s.metrics.decompressed.Observe(float64(len(*buf)))

		if err := s.admit.acquire(r.Context()); err != nil {
			s.shed(w, err)
			return
		}
		defer s.admit.release()
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()

		body, err := s.submit(r, *buf, res)
		if err != nil {
			s.refused(w, err)
			return
		}
		wire.WriteRaw(w, http.StatusOK, body)
	}))
}

// refused answers a submission that was not stored.
func (s *Server) refused(w http.ResponseWriter, err error) {
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
}

func (s *Server) shed(w http.ResponseWriter, err *apiError) {
	s.metrics.shed.WithLabelValues(err.Code).Inc()
	writeError(w, err)
}

// submit decodes, checks and stores one submission and returns the
// response body.
func (s *Server) submit(r *http.Request, body []byte, res *reservation) ([]byte, error) {
	now := s.deps.Now()
	batch, err := decodeBatch(body, &decodeContext{limits: &s.limits, manifest: s.deps.Manifest, now: now, res: res})
	if err != nil {
		return nil, err
	}
	s.metrics.batchEvents.Observe(float64(batch.Read))
	if err := s.checkEnvelope(batch, now); err != nil {
		return nil, err
	}
	s.metrics.observeSkew(batch.SentAt, now)
	skew := s.limits.clockSkew(batch.SentAt, now)
	if err := s.limits.placeInTime(batch, skew, now, res); err != nil {
		return nil, err
	}

	sub := &provision.Submission{
		BatchID:         batch.ID,
		InstallationID:  batch.InstallationID,
		Region:          batch.Region,
		ManifestVersion: batch.ManifestVersion,
		ReceivedAt:      now,
		Events:          batch.Events,
	}
	var loc geo.Location
	if addr, ok := s.deps.ClientAddr(r); ok {
		loc = s.deps.Geo.Lookup(addr)
	}
	// From here on the address is gone: only the location travels.

	resp := wire.SubmitAnswer{BatchID: batch.ID, Accepted: len(batch.Events), Rejected: batch.Rejected}
	if resp.Rejected == nil {
		resp.Rejected = []wire.Rejection{}
	}
	resp.Rejected = quoteNothing(s.deps.Manifest, resp.Rejected)
	AddLocation(s.deps.Manifest, sub.Region, loc, sub.Events)
	out, err := json.Marshal(&resp)
	if err != nil {
		return nil, err
	}
	sub.Response = out

	// The store encodes the accepted events once more; they came from
	// the body, so they take no more than it.
	if err := res.grow(int64(len(body))); err != nil {
		return nil, err
	}
	start := time.Now()
	stored, dup, err := s.deps.Log.Append(r.Context(), sub)
	s.metrics.appendDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		s.appendFailed.Store(time.Now().UnixNano())
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
	s.appendFailed.Store(0)
	if dup {
		s.metrics.duplicates.Inc()
		return wire.MarkDuplicate(stored), nil
	}
	s.log.Debug("submission stored", "batch_id", batch.ID, "accepted", resp.Accepted, "rejected", len(resp.Rejected),
		"country", loc.Country, "clock_skew", skew)
	s.metrics.accepted.Add(float64(resp.Accepted))
	for _, rej := range resp.Rejected {
		s.metrics.rejected.WithLabelValues(rej.Code).Inc()
	}
	return out, nil
}

// checkEnvelope refuses a batch that is wrong as a whole: a manifest
// version the server does not accept, a sent_at that cannot be a device's
// clock, an id that is not random, and the manifest's envelope rules.
func (s *Server) checkEnvelope(b *decodedBatch, now time.Time) error {
	if n := len(b.ManifestVersion); n == 0 || n > 64 {
		return errorf(http.StatusBadRequest, wire.CodeBadBatch, "manifest_version must be 1 to 64 characters")
	}
	if _, ok := s.versions[b.ManifestVersion]; !ok {
		return errorf(http.StatusBadRequest, wire.CodeUnknownManifest,
			fmt.Sprintf("manifest_version %q is not one this server accepts (%s)", clipName(b.ManifestVersion), s.versionList))
	}
	if b.sentAt == "" {
		return errorf(http.StatusBadRequest, wire.CodeBadSentAt, "sent_at is missing")
	}
	t, err := parseTime(b.sentAt)
	if err != nil {
		return errorf(http.StatusBadRequest, wire.CodeBadSentAt, "sent_at must be an RFC 3339 date and time")
	}
	if d := t.Sub(now).Abs(); d > s.limits.MaxSentAtSkew {
		return errorf(http.StatusBadRequest, wire.CodeBadSentAt,
			fmt.Sprintf("sent_at is %.0f days from the server's clock, at most %.0f allowed", d.Hours()/24, s.limits.MaxSentAtSkew.Hours()/24))
	}
	b.SentAt = t
	envelope := b.Batch
	envelope.Events = nil
	if vs := s.deps.Manifest.CheckBatch(&envelope); len(vs) > 0 {
		v := vs[0]
		code := string(v.Code)
		if v.Code == manifest.CodeBadEvent {
			code = wire.CodeBadBatch
		}
		return errorf(http.StatusBadRequest, code, v.Path+": "+v.Message)
	}
	if id := b.InstallationID; id != "" && !randomUUID(id) {
		return errorf(http.StatusBadRequest, wire.CodeBadInstallationID, "installation_id must be a random UUID: not nil, random bits not all zero")
	}
	return nil
}
