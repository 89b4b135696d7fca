package server

import (
	"github.com/provisionhq/provision/internal/forward"
	"github.com/provisionhq/provision/internal/privacy"
)

// RecipientOwners returns the recipients the forwarders' file configures
// as owners, none when file is empty. `provision privacy erase` registers
// them too, so its erasures queue the same notices the server delivers.
func RecipientOwners(file string, getenv func(string) string) ([]privacy.Owner, error) {
	if file == "" {
		return nil, nil
	}
	fc, err := forward.LoadConfig(file)
	if err != nil {
		return nil, err
	}
	return recipientOwners(fc, getenv)
}

// recipientOwners registers each recipient that received installation
// data as an owner of its copy: every erasure tells it, and the receipt
// says when it confirmed.
func recipientOwners(fc *forward.Config, getenv func(string) string) ([]privacy.Owner, error) {
	if fc == nil {
		return nil, nil
	}
	deleters, err := fc.Deleters(getenv)
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
