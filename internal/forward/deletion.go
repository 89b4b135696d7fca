package forward

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/wire"
)

// Deleter tells a recipient that an installation was erased, so that it
// deletes what it received (GDPR Art. 17(2) and 19; CCPA's notice to
// service providers). Delete returns when the recipient confirmed, with the
// time it gives for the deletion (or the time of its answer).
type Deleter interface {
	Recipient() string
	Delete(ctx context.Context, installationID string) (time.Time, error)
}

// GA4 user deletion: the Google Analytics User Deletion API. Its upsert
// method is the stable, documented way to delete a GA4 property's data of
// one client id, with a scope that allows nothing else; the Admin API's
// properties.submitUserDeletion does the same but is v1alpha and needs the
// broader analytics.edit scope.
const (
	GA4DeletionEndpoint = "https://www.googleapis.com/analytics/v3/userDeletion/userDeletionRequests:upsert"
	GA4DeletionScope    = "https://www.googleapis.com/auth/analytics.user.deletion"
)

// GA4DeletionConfig configures deletions at Google Analytics.
type GA4DeletionConfig struct {
	PropertyID string // the GA4 property id (digits)
	// Credentials is a service account's JSON key file's content.
	Credentials []byte
	Endpoint    string // GA4DeletionEndpoint when empty
	// TokenURL overrides the key's token_uri (tests use a local peer).
	TokenURL string
	Client   *http.Client // for both the token exchange and the request
	Retry    wire.Policy
}

// GA4Deletion sends user deletion requests to Google Analytics.
type GA4Deletion struct {
	cfg    GA4DeletionConfig
	client *http.Client
}

// serviceAccount is the part of a service account key file used here.
type serviceAccount struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
	TokenURI     string `json:"token_uri"`
}

// maxCredentials bounds a key file.
const maxCredentials = 64 << 10

// NewGA4Deletion checks the configuration and prepares the OAuth 2.0
// service-account flow (a JWT assertion signed with the key, exchanged for
// an access token of the deletion scope, cached until it expires).
func NewGA4Deletion(cfg GA4DeletionConfig) (*GA4Deletion, error) {
	if cfg.PropertyID == "" {
		return nil, errors.New("google_analytics.deletion: property_id is required")
	}
	if len(cfg.Credentials) == 0 || len(cfg.Credentials) > maxCredentials {
		return nil, errors.New("google_analytics.deletion: a service account key file is required")
	}
	var sa serviceAccount
	if err := json.Unmarshal(cfg.Credentials, &sa); err != nil {
		return nil, fmt.Errorf("google_analytics.deletion: key file: %w", err)
	}
	if sa.Type != "service_account" || sa.ClientEmail == "" || sa.PrivateKey == "" {
		return nil, errors.New("google_analytics.deletion: key file is not a service account key")
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = GA4DeletionEndpoint
	}
	if u, err := url.Parse(cfg.Endpoint); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("google_analytics.deletion: endpoint %q must be an https URL", cfg.Endpoint)
	}
	tokenURL := cmpOr(cfg.TokenURL, sa.TokenURI, "https://oauth2.googleapis.com/token")
	if u, err := url.Parse(tokenURL); err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("google_analytics.deletion: token url %q must be an https URL", tokenURL)
	}
	if cfg.Client == nil {
		var err error
		if cfg.Client, err = NewHTTPClient("", 30*time.Second); err != nil {
			return nil, err
		}
	}
	jc := &jwt.Config{Email: sa.ClientEmail, PrivateKey: []byte(sa.PrivateKey), PrivateKeyID: sa.PrivateKeyID,
		Scopes: []string{GA4DeletionScope}, TokenURL: tokenURL}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, cfg.Client)
	return &GA4Deletion{cfg: cfg, client: oauth2.NewClient(ctx, jc.TokenSource(ctx))}, nil
}

func cmpOr(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// Recipient implements Deleter.
func (g *GA4Deletion) Recipient() string { return provision.RecipientGoogleAnalytics }

// GA4DeletionRequest is the upsert's body and answer.
type GA4DeletionRequest struct {
	Kind string `json:"kind"`
	ID   struct {
		Type   string `json:"type"`
		UserID string `json:"userId"`
	} `json:"id"`
	PropertyID          string `json:"propertyId"`
	DeletionRequestTime string `json:"deletionRequestTime,omitempty"`
}

// Delete implements Deleter: the installation id is the client_id the
// forwarder sent, so that is the id deleted.
func (g *GA4Deletion) Delete(ctx context.Context, installationID string) (time.Time, error) {
	var r GA4DeletionRequest
	r.Kind = "analytics#userDeletionRequest"
	r.ID.Type, r.ID.UserID = "CLIENT_ID", installationID
	r.PropertyID = g.cfg.PropertyID
	body, err := json.Marshal(r)
	if err != nil {
		return time.Time{}, err
	}
	return wire.Retry(ctx, g.cfg.Retry, func() (time.Time, error) {
		resp, err := postJSON(ctx, g.client, g.cfg.Endpoint, body, nil)
		if err != nil {
			return time.Time{}, fmt.Errorf("google_analytics deletion: %w", err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if err := classify(resp, time.Now()); err != nil {
			return time.Time{}, fmt.Errorf("google_analytics deletion: %w", err)
		}
		var ans GA4DeletionRequest
		if err := json.Unmarshal(raw, &ans); err != nil || ans.DeletionRequestTime == "" {
			return time.Time{}, fmt.Errorf("google_analytics deletion: answer without deletionRequestTime")
		}
		at, err := time.Parse(time.RFC3339Nano, ans.DeletionRequestTime)
		if err != nil {
			return time.Time{}, fmt.Errorf("google_analytics deletion: deletionRequestTime: %w", err)
		}
		return at.UTC(), nil
	})
}

// postJSON posts body; a transport failure is transient and never shows
// the URL (it may hold a secret).
func postJSON(ctx context.Context, c *http.Client, endpoint string, body []byte, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, scrubURL(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return nil, wire.Transient(scrubURL(err))
	}
	return resp, nil
}

// WebhookDeletion is the third party's deletion notice, signed like every
// delivery.
type WebhookDeletion struct {
	DeliveryID     string `json:"delivery_id"`
	Event          string `json:"event"` // "deletion"
	InstallationID string `json:"installation_id"`
}

// Delete implements Deleter: a signed deletion notice on the webhook,
// retried with the webhook's policy. The provider confirms with a 2xx.
func (w *Webhook) Delete(ctx context.Context, installationID string) (time.Time, error) {
	// The delivery id is keyed like a count's, so a repeat is recognisable
	// and nothing about the id can be read from it.
	id := w.DeliveryID(&Count{InstallationID: installationID, Day: "deletion"})
	body, err := json.Marshal(WebhookDeletion{DeliveryID: id, Event: "deletion", InstallationID: installationID})
	if err != nil {
		return time.Time{}, err
	}
	return wire.Retry(ctx, w.cfg.Retry, func() (time.Time, error) {
		now := w.cfg.Now()
		h := http.Header{}
		h.Set(SignatureHeader, Sign(w.cfg.Secret, now, body))
		h.Set(DeliveryHeader, id)
		resp, err := postJSON(ctx, w.cfg.Client, w.cfg.URL, body, h)
		if err != nil {
			return time.Time{}, fmt.Errorf("third_party deletion: %w", err)
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		if err := classify(resp, now); err != nil {
			return time.Time{}, fmt.Errorf("third_party deletion: %w", err)
		}
		return w.cfg.Now().UTC(), nil
	})
}
