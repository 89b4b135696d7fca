package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/provisionhq/provision/agent"
)

// Bounds on what a host hands in: settings are small objects, and a chain
// longer than the manifest's tls.chain bound only wastes work.
const (
	maxSettingsBytes = 64 << 10
	maxChainBytes    = 1 << 20
	maxChainCerts    = 16
)

// openSettings is the config_json of provision_open.
type openSettings struct {
	Software            *softwareSettings `json:"software"`
	LicenseProviderSite string            `json:"license_provider_site"`
	ManifestFile        string            `json:"manifest_file"`
	AggregationPeriodMS int64             `json:"aggregation_period_ms"`
	Limits              *limitSettings    `json:"limits"`
	LogStderr           bool              `json:"log_stderr"`
}

type softwareSettings struct {
	Type         string `json:"type"`
	Name         string `json:"name"`
	Version      string `json:"version"`
	Edition      string `json:"edition"`
	Localization string `json:"localization"`
}

type limitSettings struct {
	MaxEvents   int   `json:"max_events"`
	MaxBytes    int64 `json:"max_bytes"`
	MaxAgeMS    int64 `json:"max_age_ms"`
	SentEntries int   `json:"sent_entries"`
	SentBytes   int64 `json:"sent_bytes"`
}

// uploadSettings is the upload_json of the upload calls.
type uploadSettings struct {
	Server         string `json:"server"`
	CAFile         string `json:"ca_file"`
	Pin            string `json:"pin"`
	Encoding       string `json:"encoding"`
	MaxAttempts    int    `json:"max_attempts"`
	MaxWaitMS      int64  `json:"max_wait_ms"`
	BackoffBaseMS  int64  `json:"backoff_base_ms"`
	BackoffMaxMS   int64  `json:"backoff_max_ms"`
	IntervalMS     int64  `json:"interval_ms"`
	MaxBatchEvents int    `json:"max_batch_events"`
	MaxBatchBytes  int    `json:"max_batch_bytes"`
}

// decodeSettings reads one JSON object strictly: an unknown key, a wrong
// type, trailing data or more than maxSettingsBytes is an error, so a typo
// in a host's settings is never silently ignored. Empty means defaults.
func decodeSettings(raw []byte, v any) error {
	if len(raw) > maxSettingsBytes {
		return fmt.Errorf("settings of %d bytes; at most %d", len(raw), maxSettingsBytes)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("settings: data after the JSON object")
	}
	return nil
}

func millis(name string, ms int64) (time.Duration, error) {
	if ms < 0 {
		return 0, fmt.Errorf("settings: %s is negative", name)
	}
	if ms > int64((100*365*24*time.Hour)/time.Millisecond) {
		return 0, fmt.Errorf("settings: %s is more than a century", name)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// parseOpenSettings turns config_json into the agent's configuration for
// stateDir; the software and licence are applied after opening, so that a
// bad value is told apart from a storage failure.
func parseOpenSettings(stateDir string, raw []byte) (agent.Config, openSettings, error) {
	var s openSettings
	if err := decodeSettings(raw, &s); err != nil {
		return agent.Config{}, s, err
	}
	cfg := agent.Config{StateDir: stateDir, ManifestFile: s.ManifestFile}
	var err error
	if cfg.AggregationPeriod, err = millis("aggregation_period_ms", s.AggregationPeriodMS); err != nil {
		return cfg, s, err
	}
	if l := s.Limits; l != nil {
		if l.MaxEvents < 0 || l.MaxBytes < 0 || l.SentEntries < 0 || l.SentBytes < 0 {
			return cfg, s, errors.New("settings: a limit is negative")
		}
		cfg.Limits = agent.Limits{MaxEvents: l.MaxEvents, MaxBytes: l.MaxBytes, SentEntries: l.SentEntries, SentBytes: l.SentBytes}
		if cfg.Limits.MaxAge, err = millis("limits.max_age_ms", l.MaxAgeMS); err != nil {
			return cfg, s, err
		}
	}
	return cfg, s, nil
}

// parseUploadSettings turns upload_json into the agent's upload settings
// and checks them. requireServer is false for the dry run, which sends
// nothing.
func parseUploadSettings(raw []byte, requireServer bool) (agent.Upload, error) {
	up, err := decodeUpload(raw)
	if err != nil {
		return up, err
	}
	if requireServer || up.Server != "" {
		if err := up.Check(); err != nil {
			return up, err
		}
	}
	return up, nil
}

// decodeUpload reads upload_json without looking at the files it names.
func decodeUpload(raw []byte) (agent.Upload, error) {
	var s uploadSettings
	if err := decodeSettings(raw, &s); err != nil {
		return agent.Upload{}, err
	}
	if s.MaxAttempts < 0 || s.MaxBatchEvents < 0 || s.MaxBatchBytes < 0 {
		return agent.Upload{}, errors.New("settings: a count is negative")
	}
	up := agent.Upload{Server: s.Server, CAFile: s.CAFile, Pin: s.Pin, Encoding: s.Encoding,
		MaxAttempts: s.MaxAttempts, MaxBatchEvents: s.MaxBatchEvents, MaxBatchBytes: s.MaxBatchBytes}
	for _, d := range []struct {
		name string
		ms   int64
		to   *time.Duration
	}{
		{"max_wait_ms", s.MaxWaitMS, &up.MaxWait},
		{"backoff_base_ms", s.BackoffBaseMS, &up.BackoffBase},
		{"backoff_max_ms", s.BackoffMaxMS, &up.BackoffMax},
		{"interval_ms", s.IntervalMS, &up.Interval},
	} {
		var err error
		if *d.to, err = millis(d.name, d.ms); err != nil {
			return up, err
		}
	}
	return up, nil
}

// splitDER cuts DER certificates that follow one another into one slice
// each, leaf first.
func splitDER(der []byte) ([][]byte, error) {
	if len(der) == 0 {
		return nil, errors.New("no certificate given")
	}
	if len(der) > maxChainBytes {
		return nil, fmt.Errorf("chain of %d bytes; at most %d", len(der), maxChainBytes)
	}
	certs, err := x509.ParseCertificates(der)
	if err != nil {
		return nil, fmt.Errorf("certificate chain: %w", err)
	}
	return raws(certs)
}

// splitPEM reads the CERTIFICATE blocks of a PEM text, leaf first; any
// other block is an error, so a private key handed in by mistake is
// refused rather than skipped.
func splitPEM(text []byte) ([][]byte, error) {
	if len(text) > maxChainBytes {
		return nil, fmt.Errorf("chain of %d bytes; at most %d", len(text), maxChainBytes)
	}
	var certs []*x509.Certificate
	rest := text
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q is not a certificate", b.Type)
		}
		if len(certs) == maxChainCerts {
			return nil, fmt.Errorf("more than %d certificates", maxChainCerts)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data that is not PEM after the certificates")
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate given")
	}
	return raws(certs)
}

func raws(certs []*x509.Certificate) ([][]byte, error) {
	if len(certs) > maxChainCerts {
		return nil, fmt.Errorf("%d certificates; at most %d", len(certs), maxChainCerts)
	}
	out := make([][]byte, len(certs))
	for i, c := range certs {
		out[i] = c.Raw
	}
	return out, nil
}
