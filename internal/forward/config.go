package forward

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/provisionhq/provision/internal/wire"
)

// Config is the forwarding section of the server configuration. Secrets are
// read from files (or named environment variables), never written inline,
// so a configuration file can be shown without leaking them.
type Config struct {
	GoogleAnalytics *GA4Settings     `yaml:"google_analytics"`
	ThirdParty      *WebhookSettings `yaml:"third_party"`
	Retry           RetryPolicy      `yaml:"retry"`
	BatchSize       int              `yaml:"batch_size"`
	PollInterval    time.Duration    `yaml:"poll_interval"`
	RedriveEvery    time.Duration    `yaml:"redrive_every"`
	MaxLag          int64            `yaml:"max_lag"`
	KeepSentDays    int              `yaml:"keep_sent_days"`
}

// GA4Settings configure the Google Analytics 4 forwarder.
type GA4Settings struct {
	MeasurementID string `yaml:"measurement_id"`
	APISecretFile string `yaml:"api_secret_file"`
	APISecretEnv  string `yaml:"api_secret_env"`
	// Endpoint is empty or "by_region" (EU and UK installations to the EU
	// endpoint, the others to the global one), "global", "region1" (EU
	// collection for all) or a full https URL ending in /mp/collect.
	Endpoint string        `yaml:"endpoint"`
	CAFile   string        `yaml:"ca_file"`
	Timeout  time.Duration `yaml:"timeout"`
	// Deletion, when set, tells Google Analytics of every erasure.
	Deletion *GA4DeletionSettings `yaml:"deletion"`
}

// GA4DeletionSettings configure user deletions at Google Analytics.
type GA4DeletionSettings struct {
	PropertyID      string `yaml:"property_id"`
	CredentialsFile string `yaml:"credentials_file"` // a service account's JSON key
	Endpoint        string `yaml:"endpoint"`         // GA4DeletionEndpoint when empty
	TokenURL        string `yaml:"token_url"`        // the key's token_uri when empty
}

// DeletionRetry makes one delivery of a deletion notice one attempt: the
// notices are queued in the store and the server's notices job retries
// them (privacy.Notifier, with the wire's policy), across restarts.
var DeletionRetry = wire.Policy{MaxAttempts: 1}

// WebhookSettings configure the third-party provider's webhook.
type WebhookSettings struct {
	URL        string        `yaml:"url"`
	SecretFile string        `yaml:"secret_file"`
	SecretEnv  string        `yaml:"secret_env"`
	CAFile     string        `yaml:"ca_file"`
	Timeout    time.Duration `yaml:"timeout"`
}

// maxConfigBytes bounds a configuration file.
const maxConfigBytes = 1 << 20

// LoadConfig reads a YAML configuration file; unknown keys are errors.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(data)
}

// ParseConfig decodes and validates a configuration.
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > maxConfigBytes {
		return nil, fmt.Errorf("forward config: larger than %d bytes", maxConfigBytes)
	}
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("forward config: %w", err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate names every bad field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("forward config: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if g := c.GoogleAnalytics; g != nil {
		if g.MeasurementID == "" {
			bad("google_analytics.measurement_id", "required")
		}
		if (g.APISecretFile == "") == (g.APISecretEnv == "") {
			bad("google_analytics.api_secret_file", "give exactly one of api_secret_file and api_secret_env")
		}
		if _, err := ga4Endpoint(g.Endpoint); err != nil {
			bad("google_analytics.endpoint", "%v", err)
		}
		if d := g.Deletion; d != nil && (d.PropertyID == "" || d.CredentialsFile == "") {
			bad("google_analytics.deletion", "property_id and credentials_file are required")
		}
	}
	if w := c.ThirdParty; w != nil {
		if !strings.HasPrefix(w.URL, "https://") {
			bad("third_party.url", "must be an https URL")
		}
		if (w.SecretFile == "") == (w.SecretEnv == "") {
			bad("third_party.secret_file", "give exactly one of secret_file and secret_env")
		}
	}
	if c.Retry.MaxAttempts < 0 || c.Retry.InitialBackoff < 0 || c.Retry.MaxBackoff < 0 || c.Retry.MaxWait < 0 {
		bad("retry", "values must not be negative")
	}
	if c.BatchSize < 0 || c.BatchSize > 10000 {
		bad("batch_size", "must be between 1 and 10000")
	}
	if c.KeepSentDays < 0 || c.KeepSentDays > 366 {
		bad("keep_sent_days", "must be between 1 and 366")
	}
	if c.PollInterval < 0 || c.RedriveEvery < 0 || c.MaxLag < 0 {
		bad("poll_interval", "durations and max_lag must not be negative")
	}
	return errors.Join(errs...)
}

func ga4Endpoint(s string) (string, error) {
	switch s {
	case "", "by_region":
		return "", nil
	case "global":
		return GA4EndpointGlobal, nil
	case "region1", "eu":
		return GA4EndpointRegion1, nil
	}
	if !strings.HasPrefix(s, "https://") || !strings.HasSuffix(s, "/mp/collect") {
		return "", fmt.Errorf("%q is not global, region1 or an https URL ending in /mp/collect", s)
	}
	return s, nil
}

// readSecret reads a secret from a file or an environment variable.
func readSecret(file, envName string, getenv func(string) string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		return bytes.TrimSpace(b), nil
	}
	v := getenv(envName)
	if v == "" {
		return nil, fmt.Errorf("environment variable %s is empty", envName)
	}
	return []byte(v), nil
}

// recipientClient is the HTTP client for the recipient configured in
// section.
func recipientClient(section, caFile string, timeout time.Duration) (*http.Client, error) {
	client, err := NewHTTPClient(caFile, orDefault(timeout, 30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", section, err)
	}
	return client, nil
}

// webhook reads the third party's secret, makes its client and builds its
// webhook, whose deletion notices are retried by retry.
func (w *WebhookSettings) webhook(getenv func(string) string, retry wire.Policy) (*Webhook, error) {
	secret, err := readSecret(w.SecretFile, w.SecretEnv, getenv)
	if err != nil {
		return nil, fmt.Errorf("third_party secret: %w", err)
	}
	client, err := recipientClient("third_party", w.CAFile, w.Timeout)
	if err != nil {
		return nil, err
	}
	return NewWebhook(WebhookConfig{URL: w.URL, Secret: secret, Client: client, Retry: retry})
}

// Senders builds the configured senders. getenv reads secrets named by
// *_env settings.
func (c *Config) Senders(getenv func(string) string) ([]Sender, error) {
	var out []Sender
	if g := c.GoogleAnalytics; g != nil {
		secret, err := readSecret(g.APISecretFile, g.APISecretEnv, getenv)
		if err != nil {
			return nil, fmt.Errorf("google_analytics api secret: %w", err)
		}
		endpoint, _ := ga4Endpoint(g.Endpoint)
		client, err := recipientClient("google_analytics", g.CAFile, g.Timeout)
		if err != nil {
			return nil, err
		}
		s, err := NewGA4(GA4Config{MeasurementID: g.MeasurementID, APISecret: string(secret), Endpoint: endpoint, Client: client})
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if w := c.ThirdParty; w != nil {
		s, err := w.webhook(getenv, wire.Policy{})
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Deleters builds who is told of erasures: Google Analytics when its
// deletion is configured, and the third party whenever it is configured
// (its webhook takes deletion notices like counts).
func (c *Config) Deleters(getenv func(string) string) ([]Deleter, error) {
	var out []Deleter
	if g := c.GoogleAnalytics; g != nil && g.Deletion != nil {
		key, err := os.ReadFile(g.Deletion.CredentialsFile)
		if err != nil {
			return nil, fmt.Errorf("google_analytics.deletion: %w", err)
		}
		client, err := recipientClient("google_analytics", g.CAFile, g.Timeout)
		if err != nil {
			return nil, err
		}
		d, err := NewGA4Deletion(GA4DeletionConfig{PropertyID: g.Deletion.PropertyID, Credentials: key,
			Endpoint: g.Deletion.Endpoint, TokenURL: g.Deletion.TokenURL, Client: client, Retry: DeletionRetry})
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if w := c.ThirdParty; w != nil {
		d, err := w.webhook(getenv, DeletionRetry)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Apply copies the tuning settings into forwarder options.
func (c *Config) Apply(o *Options) {
	o.Retry = c.Retry
	o.BatchSize = c.BatchSize
	o.PollInterval = c.PollInterval
	o.RedriveEvery = c.RedriveEvery
	o.MaxLag = c.MaxLag
	o.KeepSentDays = c.KeepSentDays
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}
