package forwardtest

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/recorder"
)

// outage makes a peer answer with an error status for a while.
type outage struct {
	mu         sync.Mutex
	status     int
	remaining  int // requests still to fail; -1 until Recover
	retryAfter int
	refused    int
}

// Fail makes the next n requests (n < 0: all until Recover) fail with status
// and, when retryAfter > 0, a Retry-After header of that many seconds.
func (o *outage) Fail(status, n, retryAfter int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.status, o.remaining, o.retryAfter = status, n, retryAfter
}

// Recover ends an outage.
func (o *outage) Recover() { o.Fail(0, 0, 0) }

// Refused is how many requests the outage answered.
func (o *outage) Refused() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refused
}

func (o *outage) intercept(w http.ResponseWriter) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.remaining == 0 {
		return false
	}
	if o.remaining > 0 {
		o.remaining--
	}
	o.refused++
	if o.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(o.retryAfter))
	}
	http.Error(w, http.StatusText(o.status), o.status)
	return true
}

// GA4Server is a local HTTPS stand-in for the Measurement Protocol that
// enforces its documented rules. Like the real /mp/collect it answers 2xx
// even to a request that breaks them, and records the breach in Violations;
// /debug/mp/collect answers with validationMessages instead.
type GA4Server struct {
	outage
	*httptest.Server
	MeasurementID, APISecret string
	Now                      func() time.Time

	accepted   recorder.List[forward.MPRequest]
	violations recorder.List[string]
}

// NewGA4Server starts the server; it stops with the test.
func NewGA4Server(t testing.TB, measurementID, apiSecret string) *GA4Server {
	s := &GA4Server{MeasurementID: measurementID, APISecret: apiSecret, Now: time.Now}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mp/collect", func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, false) })
	mux.HandleFunc("POST /debug/mp/collect", func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, true) })
	s.Server = startTLS(mux)
	t.Cleanup(s.Close)
	return s
}

// Endpoint is the collection URL to configure.
func (s *GA4Server) Endpoint() string { return s.URL + "/mp/collect" }

// Accepted returns the requests that met every rule.
func (s *GA4Server) Accepted() []forward.MPRequest { return s.accepted.All() }

// Violations returns every rule broken so far.
func (s *GA4Server) Violations() []string { return s.violations.All() }

func (s *GA4Server) serve(w http.ResponseWriter, r *http.Request, debug bool) {
	if s.intercept(w) {
		return
	}
	q := r.URL.Query()
	if q.Get("measurement_id") != s.MeasurementID || q.Get("api_secret") != s.APISecret {
		// The real service also answers 2xx here and drops the hit.
		s.record(debug, w, nil, []forward.ValidationMessage{{FieldPath: "api_secret", Description: "unknown measurement_id or api_secret", ValidationCode: "VALUE_INVALID"}})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, forward.GA4MaxBodyBytes+1))
	if err != nil {
		return
	}
	var msgs []forward.ValidationMessage
	bad := func(path, format string, args ...any) {
		msgs = append(msgs, forward.ValidationMessage{FieldPath: path, Description: fmt.Sprintf(format, args...), ValidationCode: "VALUE_INVALID"})
	}
	if len(body) >= forward.GA4MaxBodyBytes {
		bad("", "post body must be smaller than 130kB")
		s.record(debug, w, nil, msgs)
		return
	}
	var req forward.MPRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&req); err != nil {
		bad("", "malformed JSON: %v", err)
		s.record(debug, w, nil, msgs)
		return
	}
	if req.ClientID == "" {
		bad("client_id", "client_id is required")
	}
	if req.TimestampMicros != 0 {
		ts := time.UnixMicro(req.TimestampMicros)
		now := s.Now()
		if now.Sub(ts) > forward.GA4MaxBackdate {
			bad("timestamp_micros", "more than 72 hours in the past")
		}
		if ts.Sub(now) > time.Minute {
			bad("timestamp_micros", "in the future")
		}
	}
	if len(req.Events) == 0 || len(req.Events) > forward.GA4MaxEventsPerRequest {
		bad("events", "a request carries 1 to 25 events, not %d", len(req.Events))
	}
	for i, ev := range req.Events {
		path := fmt.Sprintf("events[%d]", i)
		if err := ruleName(ev.Name, forward.GA4MaxNameLength, nil, forward.GA4ReservedEventNames); err != "" {
			bad(path+".name", "%s", err)
		}
		if len(ev.Params) > forward.GA4MaxParamsPerEvent {
			bad(path+".params", "%d parameters, at most 25", len(ev.Params))
		}
		for k, v := range ev.Params {
			if err := ruleName(k, forward.GA4MaxNameLength, forward.GA4ReservedParamPrefixes, forward.GA4ReservedParamNames); err != "" {
				bad(path+".params."+k, "%s", err)
			}
			if err := ruleValue(v, forward.GA4MaxParamValueLength); err != "" {
				bad(path+".params."+k, "%s", err)
			}
		}
	}
	if len(req.UserProperties) > forward.GA4MaxUserProperties {
		bad("user_properties", "%d user properties, at most 25", len(req.UserProperties))
	}
	for k, v := range req.UserProperties {
		if err := ruleName(k, forward.GA4MaxUserPropName, forward.GA4ReservedUserPrefixes, forward.GA4ReservedUserProps); err != "" {
			bad("user_properties."+k, "%s", err)
		}
		if err := ruleValue(v.Value, forward.GA4MaxUserPropValue); err != "" {
			bad("user_properties."+k, "%s", err)
		}
	}
	s.record(debug, w, &req, msgs)
}

func (s *GA4Server) record(debug bool, w http.ResponseWriter, req *forward.MPRequest, msgs []forward.ValidationMessage) {
	if debug {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"validationMessages": append([]forward.ValidationMessage{}, msgs...)})
		return
	}
	for _, m := range msgs {
		s.violations.Add(m.FieldPath + ": " + m.Description)
	}
	if len(msgs) == 0 && req != nil {
		s.accepted.Add(*req)
	}
	w.WriteHeader(http.StatusNoContent)
}

func ruleName(name string, limit int, prefixes, reserved []string) string {
	if name == "" || len(name) > limit {
		return fmt.Sprintf("name %q longer than %d characters or empty", name, limit)
	}
	if name[0] < 'A' || name[0] > 'z' || (name[0] > 'Z' && name[0] < 'a') {
		return fmt.Sprintf("name %q must start with a letter", name)
	}
	if strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_')
	}) >= 0 {
		return fmt.Sprintf("name %q holds characters other than letters, digits and underscores", name)
	}
	for _, p := range prefixes {
		if strings.HasPrefix(name, p) {
			return fmt.Sprintf("name %q uses reserved prefix %q", name, p)
		}
	}
	if slices.Contains(reserved, name) {
		return fmt.Sprintf("name %q is reserved", name)
	}
	return ""
}

func ruleValue(v any, limit int) string {
	switch x := v.(type) {
	case string:
		if utf8.RuneCountInString(x) > limit {
			return fmt.Sprintf("value of %d characters, at most %d", utf8.RuneCountInString(x), limit)
		}
	case json.Number, bool:
	default:
		return fmt.Sprintf("value of type %T is not a string, number or boolean", v)
	}
	return ""
}

// Receiver is the third-party provider's side of the webhook in tests: a
// local HTTPS server that verifies the signature and the replay window and
// drops repeats of a delivery id.
type Receiver struct {
	outage
	*httptest.Server
	Secret []byte
	Window time.Duration
	Now    func() time.Time

	received recorder.List[forward.WebhookBody]
	rejected recorder.List[string]

	mu         sync.Mutex
	duplicates int
	seen       map[string]bool
}

// NewReceiver starts the receiver; it stops with the test.
func NewReceiver(t testing.TB, secret []byte) *Receiver {
	r := &Receiver{Secret: secret, Window: 5 * time.Minute, Now: time.Now, seen: map[string]bool{}}
	r.Server = startTLS(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

// Received returns the deliveries accepted, each delivery id once.
func (r *Receiver) Received() []forward.WebhookBody { return r.received.All() }

// Duplicates is how many repeats of a delivery id arrived.
func (r *Receiver) Duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.duplicates
}

// Rejected lists why requests were refused (bad signature, replay, bad body).
func (r *Receiver) Rejected() []string { return r.rejected.All() }

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	if r.intercept(w) {
		return
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	if err != nil {
		return
	}
	if err := forward.VerifySignature(req.Header.Get(forward.SignatureHeader), body, r.Secret, r.Now(), r.Window); err != nil {
		r.reject(w, http.StatusUnauthorized, err.Error())
		return
	}
	var b forward.WebhookBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(&b); err != nil || b.DeliveryID == "" || b.DeliveryID != req.Header.Get(forward.DeliveryHeader) {
		r.reject(w, http.StatusBadRequest, fmt.Sprintf("bad body: %v", err))
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen[b.DeliveryID] {
		r.duplicates++
	} else {
		r.seen[b.DeliveryID] = true
		r.received.Add(b)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (r *Receiver) reject(w http.ResponseWriter, status int, why string) {
	r.rejected.Add(why)
	http.Error(w, why, status)
}

// startTLS starts a TLS test server that does not log handshake failures,
// which the tests provoke on purpose.
func startTLS(h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	return srv
}

// CAFile writes the PEM certificate of a test TLS server to a file in a
// temporary directory and returns its path, for a ca_file setting.
func CAFile(t testing.TB, srv *httptest.Server) string {
	path := filepath.Join(t.TempDir(), "ca.pem")
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
