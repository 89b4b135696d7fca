package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"reflect"
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
	// Limits are the ingest limits set in the file, under their yaml
	// names; zero (or an absent key) keeps the default. Sizes are bytes,
	// rates requests per second per client address (.inf: no limit).
	Limits ingest.Limits `yaml:"limits"`
}

func defaultServeConfig() serveConfig {
	return serveConfig{
		Listen:          ":8443",
		LogLevel:        "info",
		LogFormat:       "json",
		ShutdownTimeout: 30 * time.Second,
	}
}

// ingestLimits merges the configured limits over the defaults: each limit
// given (not zero) replaces the default, a rate of .inf is no limit.
func (c *serveConfig) ingestLimits() ingest.Limits {
	l := ingest.DefaultLimits()
	given, dst := reflect.ValueOf(c.Limits), reflect.ValueOf(&l).Elem()
	for i := range given.NumField() {
		if f := given.Field(i); !f.Equal(reflect.Zero(f.Type())) {
			dst.Field(i).Set(f)
		}
	}
	for _, r := range []*rate.Limit{&l.SubmitRate, &l.DeletionRate} {
		if math.IsInf(float64(*r), 1) {
			*r = rate.Inf
		}
	}
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
