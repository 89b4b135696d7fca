package server

import (
	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/privacy"
)

// recipientOwners registers each recipient that received installation
// data as an owner of its copy: every erasure tells it, and the receipt
// says when it confirmed.
func recipientOwners(cfg *Config) ([]privacy.Owner, error) {
	if cfg.ForwardConfig == "" {
		return nil, nil
	}
	fc, err := forward.LoadConfig(cfg.ForwardConfig)
	if err != nil {
		return nil, err
	}
	deleters, err := fc.Deleters(cfg.Getenv)
	if err != nil {
		return nil, err
	}
	var out []privacy.Owner
	for _, d := range deleters {
		out = append(out, privacy.Owner{Engine: privacy.EngineRecipient, Name: d.Recipient(),
			Holds: "daily counts forwarded with the installation id", Names: true, Notify: d.Delete,
			Retention: "the recipient's own, until told of the erasure"})
	}
	return out, nil
}
