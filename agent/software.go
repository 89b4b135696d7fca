package agent

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// Software describes the host application.
type Software struct {
	Type         string `json:"type" yaml:"type"`                 // vpn, security_suite, antivirus or utility
	Name         string `json:"name" yaml:"name"`                 // product name
	Version      string `json:"version" yaml:"version"`           // such as 5.14.0.1234
	Edition      string `json:"edition" yaml:"edition"`           // such as free or premium
	Localization string `json:"localization" yaml:"localization"` // a language tag such as en-GB
}

// SetSoftware sets what the agent reports about the host application. The
// type must be one the manifest declares.
func (a *Agent) SetSoftware(s Software) error {
	if it := a.m.Item("software.type"); it != nil && s.Type != "" && !slices.Contains(it.Type.Values, s.Type) {
		return fmt.Errorf("agent: software type %q: the manifest allows %s", s.Type, strings.Join(it.Type.Values, ", "))
	}
	a.mu.Lock()
	a.software = s
	a.mu.Unlock()
	return nil
}

func (a *Agent) currentSoftware() Software {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.software
}

// SetLicenseProvider sets the website of the shop or partner that sold the
// licence. Only its scheme and host are kept: a path or query could name
// the buyer or the order.
func (a *Agent) SetLicenseProvider(site string) error {
	origin, err := Origin(site)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.license = origin
	a.mu.Unlock()
	return nil
}

// Origin reduces a web address to its scheme and host (with the port only
// when it is not the scheme's default), dropping user information, path,
// query and fragment. Only http and https are accepted.
func Origin(site string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(site))
	if err != nil {
		return "", fmt.Errorf("agent: licence provider site: %w", err)
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "https" && scheme != "http" {
		return "", fmt.Errorf("agent: licence provider site %q: want an http or https address", site)
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "" {
		return "", fmt.Errorf("agent: licence provider site %q has no host", site)
	}
	port := u.Port()
	if port == "" || scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		return scheme + "://" + host, nil
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}
