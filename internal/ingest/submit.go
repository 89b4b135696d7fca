package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/manifest"
)

// Manifest items the server derives from the connection.
const (
	itemCountry     = "location.country"
	itemSubdivision = "location.subdivision"
)

// Rejection is one event that was not accepted, in the 200 response.
type Rejection struct {
	Index   int    `json:"index"`
	Code    string `json:"code"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// Response is the answer to a submission. Duplicate stays the last field:
// a resend is answered with the stored bytes with that flag turned on.
type Response struct {
	BatchID   string      `json:"batch_id"`
	Accepted  int         `json:"accepted"`
	Rejected  []Rejection `json:"rejected"`
	Duplicate bool        `json:"duplicate"`
}

var (
	firstSuffix     = []byte(`"duplicate":false}`)
	duplicateSuffix = []byte(`"duplicate":true}`)
)

func (s *Server) handleSubmit() http.Handler {
	return s.limitClients(s.submitLimit, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if s.draining.Load() {
			s.shed(w, retryable(http.StatusServiceUnavailable, CodeUnavailable, "server is shutting down", 5))
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
		writeRaw(w, http.StatusOK, body)
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

	sub := &provision.Submission{
		BatchID:         batch.ID,
		InstallationID:  batch.InstallationID,
		Region:          batch.Region,
		ManifestVersion: batch.ManifestVersion,
		ReceivedAt:      now,
		Events:          batch.Events,
	}
	if addr, ok := s.deps.ClientAddr(r); ok {
		loc := s.deps.Geo.Lookup(addr)
		sub.Country, sub.Subdivision = loc.Country, loc.Subdivision
	}
	// From here on the address is gone: only the location travels.

	resp := Response{BatchID: batch.ID, Accepted: len(batch.Events), Rejected: batch.Rejected}
	if resp.Rejected == nil {
		resp.Rejected = []Rejection{}
	}
	s.addLocation(sub)
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
		if errors.Is(err, provision.ErrUnavailable) {
			return nil, retryable(http.StatusServiceUnavailable, CodeUnavailable, "the store cannot take the batch now", 5)
		}
		return nil, retryable(http.StatusServiceUnavailable, CodeUnavailable, "the batch could not be stored", 5)
	}
	s.appendFailed.Store(0)
	if dup {
		s.metrics.duplicates.Inc()
		if bytes.HasSuffix(stored, firstSuffix) {
			stored = append(stored[:len(stored)-len(firstSuffix):len(stored)-len(firstSuffix)], duplicateSuffix...)
		}
		return stored, nil
	}
	s.log.Debug("submission stored", "batch_id", batch.ID, "accepted", resp.Accepted, "rejected", len(resp.Rejected),
		"country", sub.Country)
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
		return errorf(http.StatusBadRequest, CodeBadBatch, "manifest_version must be 1 to 64 characters")
	}
	if _, ok := s.versions[b.ManifestVersion]; !ok {
		return errorf(http.StatusBadRequest, CodeUnknownManifest,
			fmt.Sprintf("manifest_version %q is not one this server accepts (%s)", clipName(b.ManifestVersion), s.versionList))
	}
	if b.sentAt == "" {
		return errorf(http.StatusBadRequest, CodeBadSentAt, "sent_at is missing")
	}
	t, err := parseTime(b.sentAt)
	if err != nil {
		return errorf(http.StatusBadRequest, CodeBadSentAt, "sent_at must be an RFC 3339 date and time")
	}
	if d := t.Sub(now).Abs(); d > s.limits.MaxSentAtSkew {
		return errorf(http.StatusBadRequest, CodeBadSentAt,
			fmt.Sprintf("sent_at is %.0f days from the server's clock, at most %.0f allowed", d.Hours()/24, s.limits.MaxSentAtSkew.Hours()/24))
	}
	b.SentAt = t
	envelope := b.Batch
	envelope.Events = nil
	if vs := s.deps.Manifest.CheckBatch(&envelope); len(vs) > 0 {
		v := vs[0]
		code := string(v.Code)
		if v.Code == manifest.CodeBadEvent {
			code = CodeBadBatch
		}
		return errorf(http.StatusBadRequest, code, v.Path+": "+v.Message)
	}
	if id := b.InstallationID; id != "" && !randomUUID(id) {
		return errorf(http.StatusBadRequest, CodeBadInstallationID, "installation_id must be a random UUID: not nil, random bits not all zero")
	}
	return nil
}

// addLocation adds the derived location to each event whose type the
// manifest declares it for in the batch's region, and to no other.
func (s *Server) addLocation(sub *provision.Submission) {
	if sub.Country == "" {
		return
	}
	m := s.deps.Manifest
	country, subdivision := m.Item(itemCountry), m.Item(itemSubdivision)
	declared := func(it *manifest.Item, eventType string, v string) bool {
		if it == nil || v == "" || !m.InEvent(it, eventType) || !it.ForRegion(sub.Region) {
			return false
		}
		return len(m.CheckValue(nil, 0, it, v)) == 0
	}
	for i := range sub.Events {
		ev := &sub.Events[i]
		if declared(country, ev.Type, sub.Country) {
			if ev.Fields == nil {
				ev.Fields = map[string]any{}
			}
			ev.Fields[itemCountry] = sub.Country
			if declared(subdivision, ev.Type, sub.Subdivision) {
				ev.Fields[itemSubdivision] = sub.Subdivision
			}
		}
	}
}
