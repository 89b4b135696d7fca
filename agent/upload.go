package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"github.com/google/uuid"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/agent/internal/outbox"
	"github.com/provisionhq/provision/agent/internal/transport"
	"github.com/provisionhq/provision/internal/clock"
	"github.com/provisionhq/provision/internal/wire"
)

// Upload configures how and where the agent sends.
type Upload struct {
	Server   string // https://host[:port]; only https is accepted
	CAFile   string // PEM roots that sign the server's certificate, instead of the system's
	Pin      string // hex SHA-256 of the server certificate's SPKI, checked in addition
	Encoding string // gzip (default), zstd or identity

	MaxBatchEvents int // default 500
	MaxBatchBytes  int // uncompressed JSON of the events; default 512 KiB

	// MaxAttempts bounds the tries of one request in one flush (default 5);
	// what is still refused stays in the outbox for the next flush. The
	// waits between tries grow exponentially with jitter, from BackoffBase
	// to BackoffMax, and are never shorter than the server's Retry-After.
	MaxAttempts int
	BackoffBase time.Duration // default 1 s
	BackoffMax  time.Duration // default 5 min
	// MaxWait is the longest single wait a flush accepts; a server asking
	// for more (Retry-After) ends the flush and the data waits for the next
	// one. Default 15 min.
	MaxWait time.Duration

	// Interval is the background uploader's period (default 24 h 17 min:
	// about one upload a day, since each upload's TLS handshake and
	// headers cost more than a day's events; it does not divide a day, so
	// a fleet's uploads drift over the clock instead of meeting at the
	// same hours); each wait is jittered by ±20 %.
	Interval time.Duration

	// Sleep waits for d or until ctx ends between the background
	// uploader's turns; nil means a timer. Tests replace it to see the
	// waits without waiting.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0,1) for the jitter of those turns; nil
	// means math/rand/v2.
	Rand func() float64

	// onRetry, when set, is told of each wait between tries (tests).
	onRetry func(wait time.Duration)
}

// Check reports whether the settings can be used, without connecting: an
// https server address with a host, a readable CA file holding a
// certificate, a well-formed pin and a known encoding. Flush and Run make
// the same checks; a host calls Check to tell a bad setting from a failed
// upload before it starts.
func (u Upload) Check() error {
	client, err := transport.New(transport.Options{Server: u.Server, CAFile: u.CAFile, Pin: u.Pin, Encoding: u.Encoding})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	client.Close()
	return nil
}

// DefaultInterval is the background uploader's default period.
const DefaultInterval = 24*time.Hour + 17*time.Minute

func (u Upload) withDefaults() Upload {
	if u.MaxBatchEvents <= 0 {
		u.MaxBatchEvents = 500
	}
	if u.MaxBatchBytes <= 0 {
		u.MaxBatchBytes = 512 << 10
	}
	if u.MaxAttempts <= 0 {
		u.MaxAttempts = 5
	}
	if u.MaxWait <= 0 {
		u.MaxWait = 15 * time.Minute
	}
	if u.Interval <= 0 {
		u.Interval = DefaultInterval
	}
	if (24*time.Hour)%u.Interval == 0 {
		// A period that divides a day brings every installation back at
		// the same hours; nudge it off.
		u.Interval += 7 * time.Minute
	}
	if u.Sleep == nil {
		u.Sleep = clock.Sleep
	}
	if u.Rand == nil {
		u.Rand = rand.Float64
	}
	return u
}

// sessionFile, in the state directory, keeps the server's last TLS session
// ticket, so the next upload (after a restart too) resumes the session.
const sessionFile = "tls-session"

// FlushReport says what a flush did.
type FlushReport struct {
	Batches   int `json:"batches"`
	Accepted  int `json:"accepted"`
	Rejected  int `json:"rejected"`
	Refused   int `json:"refused_batches"`
	Deletions int `json:"deletions"`
	WireBytes int `json:"wire_bytes"`
}

// maxBatchesPerFlush keeps one flush from running forever behind a
// producer that records as fast as it uploads.
const maxBatchesPerFlush = 100

// Flush sends the waiting deletion requests and events now. Events leave
// the outbox only when the server has confirmed them. It returns an error
// when something is still waiting because the server could not take it.
func (a *Agent) Flush(ctx context.Context, up Upload) (FlushReport, error) {
	up = up.withDefaults()
	var rep FlushReport
	client, err := a.transport(up)
	if err != nil {
		return rep, err
	}

	dels, err := a.store.Deletions()
	if err != nil {
		return rep, err
	}
	var deletionErr error
	if len(dels) > 0 {
		// Deletion requests name a withdrawn installation id; the batches
		// after them carry the new one. They travel on a connection of
		// their own, which keeps no TLS session ticket for the batches to
		// resume: sharing either would tell the server the two ids are one
		// installation.
		dc, err := transport.New(transport.Options{Server: up.Server, CAFile: up.CAFile, Pin: up.Pin, Encoding: up.Encoding,
			Sessions: readOnlySessions{&transport.FileSessionCache{Path: filepath.Join(a.cfg.StateDir, sessionFile)}}})
		if err != nil {
			return rep, fmt.Errorf("agent: %w", err)
		}
		defer dc.Close()
		for _, d := range dels {
			res, err := retry(ctx, a, up, func() (wire.DeletionAnswer, error) {
				return dc.Delete(ctx, d.InstallationID, d.RequestID)
			})
			perm := refusal(err)
			if err != nil && perm == nil {
				if ctx.Err() != nil {
					return rep, ctx.Err()
				}
				// Kept for the next flush; the events of the new installation
				// id, if any, need not wait for it.
				deletionErr = fmt.Errorf("agent: deletion request kept for the next upload: %w", err)
				break
			}
			// The entry names the request, not the withdrawn id: the sent log
			// outlives the erasure and must not keep what it erased.
			entry := SentEntry{Kind: "deletion", Server: up.Server, SentAt: a.now().UTC(), RequestID: d.RequestID}
			if perm != nil {
				// The server will never take this request; keeping it would
				// block every later upload. Record why.
				entry.Status, entry.Error = "refused", &SentError{perm.Code, perm.Message}
			} else {
				entry.Status = "deletion_" + res.Status
				rep.Deletions++
			}
			if err := a.store.CompleteDeletion(d.RequestID, entry.marshal()); err != nil {
				return rep, err
			}
		}
	}

	c, err := a.Consent()
	if err != nil || !c.Accepted {
		return rep, errors.Join(deletionErr, err)
	}
	for range maxBatchesPerFlush {
		in, err := a.nextInflight(c, up)
		if err != nil || in == nil {
			return rep, errors.Join(deletionErr, err)
		}
		var size int
		sent := in.Body
		res, err := retry(ctx, a, up, func() (wire.SubmitAnswer, error) {
			body, err := withSentAt(in.Body, a.now())
			if err != nil {
				// Not a batch this agent wrote: sent as it is, the
				// server's answer decides what becomes of it.
				body = in.Body
			}
			res, n, err := client.Submit(ctx, body)
			sent, size = body, n
			return res, err
		})
		perm := refusal(err)
		if perm != nil && perm.Code == wire.CodeBadSentAt {
			// The device's clock is further off than the server corrects
			// (or the batch's stamp is damaged): the events are not at
			// fault, so they wait for a clock the server can correct
			// instead of being dropped.
			a.log.Warn("server refused the batch's sent_at; the device clock is too far off to correct, batch kept", "code", perm.Code)
			return rep, errors.Join(deletionErr, fmt.Errorf("agent: batch kept for the next upload: %w", err))
		}
		if err != nil && perm == nil {
			return rep, errors.Join(deletionErr, fmt.Errorf("agent: batch not delivered, kept for the next upload: %w", err))
		}
		entry := SentEntry{Kind: "batch", BatchID: in.BatchID, Server: up.Server, SentAt: a.now().UTC(),
			Encoding: client.Encoding(), RawBytes: len(sent), WireBytes: size, Events: len(in.Seqs), Batch: sent}
		rep.Batches++
		rep.WireBytes += size
		if perm != nil {
			entry.Status, entry.Error = "refused", &SentError{perm.Code, perm.Message}
			rep.Refused++
			a.log.Warn("server refused a batch; dropped", "code", perm.Code, "status", perm.Status)
		} else {
			entry.Status, entry.Accepted, entry.Duplicate = "accepted", res.Accepted, res.Duplicate
			var types []string
			if len(res.Rejected) > 0 {
				types = eventTypes(in.Body)
			}
			for _, r := range res.Rejected {
				sr := SentRejection{Index: r.Index, Code: r.Code, Message: r.Message}
				if r.Index >= 0 && r.Index < len(types) {
					sr.Type = types[r.Index]
				}
				entry.Rejected = append(entry.Rejected, sr)
			}
			rep.Accepted += res.Accepted
			rep.Rejected += len(res.Rejected)
			if len(res.Rejected) > 0 {
				a.log.Warn("server rejected events; dropped", "rejected", len(res.Rejected))
			}
		}
		if err := a.store.Complete(in.Seqs, entry.marshal()); err != nil {
			return rep, err
		}
	}
	return rep, deletionErr
}

// clientKey is what a transport client is built from: the upload
// settings and the CA file's content, so that a changed file is read anew.
type clientKey struct {
	server, caFile, pin, encoding string
	ca                            string
}

// transport returns the client for up. One client is kept between
// flushes, with its TLS settings and its connection (until the
// connection's idle timeout), and replaced when the settings or the CA
// file change: a host that flushes again soon after, or a test that
// flushes day after day, pays for neither again.
func (a *Agent) transport(up Upload) (*transport.Client, error) {
	key := clientKey{server: up.Server, caFile: up.CAFile, pin: up.Pin, encoding: up.Encoding}
	cacheable := true
	if up.CAFile != "" {
		pem, err := os.ReadFile(up.CAFile)
		// An unreadable file is transport.New's error to report.
		cacheable = err == nil
		key.ca = string(pem)
	}
	a.clientMu.Lock()
	defer a.clientMu.Unlock()
	if cacheable && a.client != nil && a.clientKey == key {
		return a.client, nil
	}
	client, err := transport.New(transport.Options{Server: up.Server, CAFile: up.CAFile, Pin: up.Pin, Encoding: up.Encoding,
		Sessions: &transport.FileSessionCache{Path: filepath.Join(a.cfg.StateDir, sessionFile)}})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if a.client != nil {
		a.client.Close()
	}
	a.client, a.clientKey = client, key
	return client, nil
}

// readOnlySessions offers the kept TLS session but keeps none of the
// tickets a connection receives.
type readOnlySessions struct{ tls.ClientSessionCache }

func (readOnlySessions) Put(string, *tls.ClientSessionState) {}

// closeTransport releases the kept client's connection.
func (a *Agent) closeTransport() {
	a.clientMu.Lock()
	defer a.clientMu.Unlock()
	if a.client != nil {
		a.client.Close()
		a.client = nil
	}
}

// nextInflight returns the batch in flight, or cuts the next one from the
// waiting events and marks it in flight; nil when nothing waits.
//
// A batch carries the region its events were recorded under, not the
// region of the consent now: after a move from eu to br the events queued
// under eu leave in an eu batch, so the server validates, stores and
// forwards them under the eu terms they were collected under (its
// recipients, its Google Analytics endpoint). They are sent rather than
// dropped because moving is not withdrawing: the user agreed to provide
// them under those terms and has not taken that back (withdrawal empties
// the outbox); relabelling them br would apply terms they were not
// collected under.
func (a *Agent) nextInflight(c Consent, up Upload) (*outbox.Inflight, error) {
	return a.store.StartBatch(up.MaxBatchEvents, up.MaxBatchBytes, func(pending []outbox.Entry) (*outbox.Inflight, error) {
		events := make([]provision.Event, len(pending))
		seqs := make([]uint64, len(pending))
		for i, p := range pending {
			events[i], seqs[i] = p.Event, p.Seq
		}
		b := a.newBatch(c, recordedUnder(c, pending[0].Region), events)
		body, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		return &outbox.Inflight{BatchID: b.ID, Seqs: seqs, Body: body, Since: b.SentAt}, nil
	})
}

// recordedUnder is the region an event was recorded under; events queued
// before the outbox kept regions were recorded under the consent's.
func recordedUnder(c Consent, region string) string {
	if region == "" {
		return c.Region
	}
	return region
}

// withSentAt returns the batch body with sent_at set to now, the moment
// this attempt is made: the server compares sent_at with its own clock to
// correct a device clock that is off, so it must be read from the same
// clock as the events' times, at the time of sending, not when the batch
// was cut (a batch can wait days in flight). Only the envelope is
// rewritten: the events keep their bytes and the batch its id, so a
// resend is still the same batch.
func withSentAt(body []byte, now time.Time) ([]byte, error) {
	// The envelope's fields in provision.Batch's order, events verbatim:
	// encoding/json writes a RawMessage back as it was (it is compact).
	var env struct {
		ID              string          `json:"batch_id"`
		InstallationID  string          `json:"installation_id"`
		Region          string          `json:"region"`
		ManifestVersion string          `json:"manifest_version"`
		SentAt          time.Time       `json:"sent_at"`
		Events          json.RawMessage `json:"events"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, err
	}
	env.SentAt = now.UTC().Truncate(time.Millisecond)
	return json.Marshal(&env)
}

func (a *Agent) newBatch(c Consent, region string, events []provision.Event) provision.Batch {
	return provision.Batch{
		ID:              uuid.NewString(),
		InstallationID:  c.InstallationID,
		Region:          region,
		ManifestVersion: a.m.Version,
		SentAt:          a.now().UTC().Truncate(time.Millisecond),
		Events:          events,
	}
}

// retry calls send with the wire's one retry policy: until it succeeds,
// fails permanently, or the attempts run out.
func retry[T any](ctx context.Context, a *Agent, up Upload, send func() (T, error)) (T, error) {
	return wire.Retry(ctx, wire.Policy{
		Initial:     up.BackoffBase,
		Max:         up.BackoffMax,
		MaxAttempts: up.MaxAttempts,
		MaxWait:     up.MaxWait,
		Notify: func(attempt int, wait time.Duration, err error) {
			a.log.Info("upload will retry", "attempt", attempt, "wait", wait.Round(time.Millisecond), "err", err)
			if up.onRetry != nil {
				up.onRetry(wait)
			}
		},
	}, send)
}

// refusal is the server's permanent refusal of a request, which sending
// again would not change: the request is dropped and the reason recorded.
// Any other error (a certificate that does not verify included) keeps
// the request for the next flush.
func refusal(err error) *wire.Error {
	var e *wire.Error
	if errors.As(err, &e) && !e.Retryable() {
		return e
	}
	return nil
}

// Run is the background uploader: until ctx ends it collects the daily
// events and flushes, at jittered intervals from a random start, so that a
// fleet's uploads spread over the day. Errors are logged and retried at the
// next turn. It returns ctx's error.
func (a *Agent) Run(ctx context.Context, up Upload) error {
	up = up.withDefaults()
	wait := time.Duration(up.Rand() * float64(up.Interval)) // the first turn lands anywhere in the period
	for {
		if err := up.Sleep(ctx, wait); err != nil {
			return err
		}
		if _, err := a.Collect(ctx); err != nil && !errors.Is(err, ErrNoConsent) {
			a.log.Warn("collection failed", "err", err)
		}
		if rep, err := a.Flush(ctx, up); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			a.log.Warn("upload failed; data kept for the next turn", "err", err)
		} else {
			a.log.Info("uploaded", "batches", rep.Batches, "events", rep.Accepted, "bytes", rep.WireBytes)
		}
		wait = time.Duration(float64(up.Interval) * (0.8 + 0.4*up.Rand()))
	}
}

// eventTypes lists the types of a batch's events in order, to name what
// the server rejected.
func eventTypes(body []byte) []string {
	var b struct {
		Events []struct {
			Type string `json:"type"`
		} `json:"events"`
	}
	_ = json.Unmarshal(body, &b)
	out := make([]string, len(b.Events))
	for i, e := range b.Events {
		out[i] = e.Type
	}
	return out
}
