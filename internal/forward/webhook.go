package forward

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/certs"
	"github.com/provisionhq/provision/internal/wire"
)

// SignatureHeader carries the webhook signature:
//
//	Provision-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>
//
// A receiver recomputes the HMAC over the timestamp, a dot and the raw body,
// compares in constant time, and refuses a timestamp outside its replay
// window (VerifySignature does all three). Several v1 entries may appear
// while a secret is being rotated; one match suffices.
const SignatureHeader = "Provision-Signature"

// DeliveryHeader carries the delivery id: the same for every attempt at the
// same count, so a receiver can drop a repeat that a lost answer caused.
const DeliveryHeader = "Provision-Delivery"

// WebhookConfig configures the third-party provider's webhook.
type WebhookConfig struct {
	URL    string
	Secret []byte // at least 32 bytes
	Client *http.Client
	Now    func() time.Time
	// Retry is how a deletion notice is retried (counts have the
	// forwarder's own retries and dead letters).
	Retry wire.Policy
}

// Webhook posts each count as JSON to the third-party provider over HTTPS.
type Webhook struct {
	cfg WebhookConfig
}

// WebhookBody is the JSON the provider receives. Fields holds only what the
// manifest declares for third_party, keyed by manifest item id.
type WebhookBody struct {
	DeliveryID string         `json:"delivery_id"`
	Event      string         `json:"event"`
	Day        string         `json:"day"`
	Fields     map[string]any `json:"fields"`
}

// MinWebhookSecret is the shortest secret accepted.
const MinWebhookSecret = 32

// NewWebhook checks the configuration.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("third_party: url %q must be an https URL", cfg.URL)
	}
	if len(cfg.Secret) < MinWebhookSecret {
		return nil, fmt.Errorf("third_party: secret must have at least %d bytes", MinWebhookSecret)
	}
	if cfg.Client == nil {
		if cfg.Client, err = NewHTTPClient("", 30*time.Second); err != nil {
			return nil, err
		}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Webhook{cfg: cfg}, nil
}

// Recipient implements Sender.
func (w *Webhook) Recipient() string { return provision.RecipientThirdParty }

// DeliveryID is stable for a recipient, installation and day, and keyed with
// the webhook secret so that it reveals nothing about the installation id.
func (w *Webhook) DeliveryID(c *Count) string {
	mac := hmac.New(sha256.New, w.cfg.Secret)
	mac.Write([]byte(c.InstallationID + "\x00" + c.Day))
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

// Send implements Sender.
func (w *Webhook) Send(ctx context.Context, c *Count) error {
	body, err := json.Marshal(WebhookBody{DeliveryID: w.DeliveryID(c), Event: EventType, Day: c.Day, Fields: c.Fields})
	if err != nil {
		return fmt.Errorf("third_party: encode: %w", err)
	}
	now := w.cfg.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("third_party: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(w.cfg.Secret, now, body))
	req.Header.Set(DeliveryHeader, w.DeliveryID(c))
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		return wire.Transient(scrubURL(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return classify(resp, now)
}

// Sign returns the SignatureHeader value for the body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(signature(secret, ts, body))
}

func signature(secret []byte, ts string, body []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// Signature verification failures.
var (
	ErrSignatureMalformed = errors.New("signature header malformed")
	ErrSignatureMismatch  = errors.New("signature does not match")
	ErrSignatureExpired   = errors.New("signature timestamp outside the replay window")
)

// maxSignatureHeader bounds the header a receiver parses.
const maxSignatureHeader = 1024

// VerifySignature checks a SignatureHeader value against the raw body: the
// HMAC must match (constant-time) and the timestamp must lie within window
// of now. Receivers use it; the tests' receiver does.
func VerifySignature(header string, body, secret []byte, now time.Time, window time.Duration) error {
	if len(header) > maxSignatureHeader {
		return ErrSignatureMalformed
	}
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrSignatureMalformed
		}
		switch k {
		case "t":
			if ts != "" {
				return ErrSignatureMalformed
			}
			ts = v
		case "v1":
			sig, err := hex.DecodeString(v)
			if err != nil || len(sig) != sha256.Size {
				return ErrSignatureMalformed
			}
			sigs = append(sigs, sig)
		}
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 || ts != strconv.FormatInt(secs, 10) {
		return ErrSignatureMalformed
	}
	want := signature(secret, ts, body)
	matched := false
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			matched = true
		}
	}
	if !matched {
		return ErrSignatureMismatch
	}
	if d := now.Sub(time.Unix(secs, 0)); d > window || d < -window {
		return ErrSignatureExpired
	}
	return nil
}

// NewHTTPClient returns a client that verifies TLS against the system roots,
// or only against the PEM certificates in caFile when it is given.
func NewHTTPClient(caFile string, timeout time.Duration) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := certs.LoadPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		tc.RootCAs = pool
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}
