package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/provisionhq/provision/agent/internal/outbox"
)

// Consent is the user's answer to the data-provision terms.
type Consent struct {
	Accepted bool   `json:"accepted"`
	Region   string `json:"region,omitempty"`
	// InstallationID is a random UUIDv4 made when the terms are accepted
	// and replaced by a new one after a withdrawal.
	InstallationID string    `json:"installation_id,omitempty"`
	AcceptedAt     time.Time `json:"accepted_at,omitzero"`
	WithdrawnAt    time.Time `json:"withdrawn_at,omitzero"`
}

// Consent returns the stored consent; the zero Consent when none was given.
func (a *Agent) Consent() (Consent, error) {
	raw, err := a.store.Consent()
	if err != nil || raw == nil {
		return Consent{}, err
	}
	var c Consent
	if err := json.Unmarshal(raw, &c); err != nil {
		return Consent{}, fmt.Errorf("agent: stored consent unreadable: %w", err)
	}
	return c, nil
}

// consented returns the consent, or ErrNoConsent.
func (a *Agent) consented() (Consent, error) {
	c, err := a.Consent()
	if err != nil {
		return c, err
	}
	if !c.Accepted {
		return c, ErrNoConsent
	}
	return c, nil
}

// Regions are the regions the terms cover, one of which Accept takes.
func (a *Agent) Regions() []string { return slices.Clone(a.m.Terms.Regions) }

// Accept records that the user accepted the terms for the region. The first
// acceptance, and the first after a withdrawal, makes a new installation
// id; accepting again for another region keeps the id and changes which
// items apply.
func (a *Agent) Accept(region string) (Consent, error) {
	if !slices.Contains(a.m.Terms.Regions, region) {
		return Consent{}, fmt.Errorf("agent: region %q: the terms cover %s", region, strings.Join(a.m.Terms.Regions, ", "))
	}
	c, err := a.Consent()
	if err != nil {
		return Consent{}, err
	}
	if c.Accepted && c.Region == region {
		return c, nil
	}
	if !c.Accepted {
		id, err := uuid.NewRandom()
		if err != nil {
			return Consent{}, fmt.Errorf("agent: installation id: %w", err)
		}
		c = Consent{InstallationID: id.String()}
		// A TLS session resumed under the new id, or a connection kept
		// from the old one, would tell the server it is the old
		// installation's.
		a.closeTransport()
		if err := os.Remove(filepath.Join(a.cfg.StateDir, sessionFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return Consent{}, fmt.Errorf("agent: forget the TLS session: %w", err)
		}
	}
	c.Accepted, c.Region, c.AcceptedAt, c.WithdrawnAt = true, region, a.now().UTC(), time.Time{}
	raw, err := json.Marshal(c)
	if err != nil {
		return Consent{}, err
	}
	if err := a.store.Accept(raw); err != nil {
		return Consent{}, err
	}
	a.log.Info("consent accepted", "region", region)
	return c, nil
}

// Withdraw records that the user withdrew consent: the outbox is emptied
// and a request to erase everything sent under the installation id is
// queued; it goes out with the next upload, survives restarts and is never
// dropped by the outbox bounds. Collection stops at once.
func (a *Agent) Withdraw() (Consent, error) {
	c, err := a.Consent()
	if err != nil {
		return Consent{}, err
	}
	if !c.Accepted {
		return c, ErrNoConsent
	}
	del := &outbox.Deletion{InstallationID: c.InstallationID, RequestID: uuid.NewString(), Queued: a.now().UTC()}
	withdrawn := Consent{WithdrawnAt: a.now().UTC()}
	raw, err := json.Marshal(withdrawn)
	if err != nil {
		return Consent{}, err
	}
	if err := a.store.Withdraw(raw, del); err != nil {
		return Consent{}, err
	}
	a.log.Info("consent withdrawn; deletion request queued")
	return withdrawn, nil
}
