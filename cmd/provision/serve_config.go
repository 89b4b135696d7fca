package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/provisionhq/provision/internal/ingest"
)

// serveConfig is the configuration of `provision serve`. Values come from,
// in increasing precedence: defaults, the YAML file, PROVISION_*
// environment variables, and flags given on the command line.
type serveConfig struct {
	Data               string        `yaml:"data"`
	Listen             string        `yaml:"listen"`
	TLSCert            string        `yaml:"tls_cert"`
	TLSKey             string        `yaml:"tls_key"`
	InsecureHTTP       bool          `yaml:"insecure_http"`
	TrustedProxyHeader string        `yaml:"trusted_proxy_header"`
	GeoIP              string        `yaml:"geoip"`
	ForwardConfig      string        `yaml:"forward_config"`
	LogLevel           string        `yaml:"log_level"`
	LogFormat          string        `yaml:"log_format"`
	ShutdownTimeout    time.Duration `yaml:"shutdown_timeout"`
	Limits             limitsConfig  `yaml:"limits"`
}

// limitsConfig is the YAML form of ingest.Limits; zero (or an absent key)
// keeps the default. Sizes are bytes, rates requests per second per
// client address (.inf: no limit).
type limitsConfig struct {
	MaxBodyBytes         int64         `yaml:"max_body_bytes"`
	MaxDecompressedBytes int64         `yaml:"max_decompressed_bytes"`
	MaxCompressionRatio  int64         `yaml:"max_compression_ratio"`
	MaxDepth             int           `yaml:"max_depth"`
	MaxEvents            int           `yaml:"max_events"`
	MaxEventAge          time.Duration `yaml:"max_event_age"`
	MaxClockSkew         time.Duration `yaml:"max_clock_skew"`
	MaxSentAtSkew        time.Duration `yaml:"max_sent_at_skew"`
	ClockSkewTolerance   time.Duration `yaml:"clock_skew_tolerance"`
	MaxInFlight          int           `yaml:"max_in_flight"`
	QueueTimeout         time.Duration `yaml:"queue_timeout"`
	MemoryBudget         int64         `yaml:"memory_budget"`
	MinBodyRate          int64         `yaml:"min_body_rate"`
	BodyGrace            time.Duration `yaml:"body_grace"`
	SubmitRate           float64       `yaml:"submit_rate"`
	SubmitBurst          int           `yaml:"submit_burst"`
	DeletionRate         float64       `yaml:"deletion_rate"`
	DeletionBurst        int           `yaml:"deletion_burst"`
	MaxClients           int           `yaml:"max_clients"`
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		Listen:          ":8443",
		LogLevel:        "info",
		LogFormat:       "json",
		ShutdownTimeout: 30 * time.Second,
	}
}

// setIfGiven overwrites dst with v unless v is zero, the value of a key
// left out.
func setIfGiven[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

// perSecond is a rate from YAML, where .inf means no limit.
func perSecond(v float64) rate.Limit {
	if math.IsInf(v, 1) {
		return rate.Inf
	}
	return rate.Limit(v)
}

// ingestLimits merges the configured limits over the defaults.
func (c *serveConfig) ingestLimits() ingest.Limits {
	l := ingest.DefaultLimits()
	y := &c.Limits
	setIfGiven(&l.MaxBodyBytes, y.MaxBodyBytes)
	setIfGiven(&l.MaxDecompressedBytes, y.MaxDecompressedBytes)
	setIfGiven(&l.MaxCompressionRatio, y.MaxCompressionRatio)
	setIfGiven(&l.MaxDepth, y.MaxDepth)
	setIfGiven(&l.MaxEvents, y.MaxEvents)
	setIfGiven(&l.MaxEventAge, y.MaxEventAge)
	setIfGiven(&l.MaxClockSkew, y.MaxClockSkew)
	setIfGiven(&l.ClockSkewTolerance, y.ClockSkewTolerance)
	setIfGiven(&l.MaxSentAtSkew, y.MaxSentAtSkew)
	setIfGiven(&l.MaxInFlight, y.MaxInFlight)
	setIfGiven(&l.QueueTimeout, y.QueueTimeout)
	setIfGiven(&l.MemoryBudget, y.MemoryBudget)
	setIfGiven(&l.MinBodyRate, y.MinBodyRate)
	setIfGiven(&l.BodyGrace, y.BodyGrace)
	setIfGiven(&l.SubmitRate, perSecond(y.SubmitRate))
	setIfGiven(&l.SubmitBurst, y.SubmitBurst)
	setIfGiven(&l.DeletionRate, perSecond(y.DeletionRate))
	setIfGiven(&l.DeletionBurst, y.DeletionBurst)
	setIfGiven(&l.MaxClients, y.MaxClients)
	return l
}

// loadYAML reads the file strictly: an unknown key is an error naming it.
func (c *serveConfig) loadYAML(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := decodeConfigYAML(b, c); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// loadEnv applies PROVISION_* variables; a malformed value names its
// variable.
func (c *serveConfig) loadEnv(getenv func(string) string) error {
	str := func(name string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	str("PROVISION_DATA", &c.Data)
	str("PROVISION_LISTEN", &c.Listen)
	str("PROVISION_TLS_CERT", &c.TLSCert)
	str("PROVISION_TLS_KEY", &c.TLSKey)
	str("PROVISION_TRUSTED_PROXY_HEADER", &c.TrustedProxyHeader)
	str("PROVISION_GEOIP", &c.GeoIP)
	str("PROVISION_FORWARD_CONFIG", &c.ForwardConfig)
	str("PROVISION_LOG_LEVEL", &c.LogLevel)
	str("PROVISION_LOG_FORMAT", &c.LogFormat)
	var errs []error
	if v := getenv("PROVISION_INSECURE_HTTP"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("PROVISION_INSECURE_HTTP: %q is not true or false", v))
		}
		c.InsecureHTTP = b
	}
	if v := getenv("PROVISION_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("PROVISION_SHUTDOWN_TIMEOUT: %q is not a duration", v))
		}
		c.ShutdownTimeout = d
	}
	return errors.Join(errs...)
}

// Validate reports every bad setting, each naming its field.
func (c *serveConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		// Name the setting as the flag and as the YAML key, whichever
		// the user typed.
		errs = append(errs, fmt.Errorf("--%s (%s): %s", strings.ReplaceAll(field, "_", "-"), field, fmt.Sprintf(format, args...)))
	}
	if c.Data == "" {
		bad("data", "required: the directory for the store and the generated certificate")
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "%q is not host:port", c.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		bad("listen", "port %q is not a number from 0 to 65535", port)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls_cert", "tls_cert and tls_key go together")
	}
	if c.InsecureHTTP {
		if c.TLSCert != "" {
			bad("insecure_http", "cannot be combined with tls_cert")
		}
		if c.TrustedProxyHeader == "" {
			bad("trusted_proxy_header", "required with insecure_http: behind a TLS terminator the client address comes only from its header")
		}
	} else if c.TrustedProxyHeader != "" {
		bad("trusted_proxy_header", "only with insecure_http: over the server's own TLS the connection's address is used")
	}
	if h := c.TrustedProxyHeader; h != "" && !validHeaderName(h) {
		bad("trusted_proxy_header", "%q is not a header name", h)
	}
	if _, err := parseLogLevel(c.LogLevel); err != nil {
		bad("log_level", "%v", err)
	}
	if !validLogFormat(c.LogFormat) {
		bad("log_format", "%q is not text or json", c.LogFormat)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout", "must be positive, is %s", c.ShutdownTimeout)
	}
	if err := c.ingestLimits().Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return s != ""
}
