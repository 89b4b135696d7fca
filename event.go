// Package provision holds the domain types shared by the agent and the
// server: events, the batches that carry them, and region and recipient ids.
package provision

import "time"

// Event is one observation of declared data items. Fields maps manifest
// item ids to values; nothing outside the manifest may appear there.
type Event struct {
	ID     string         `json:"id"`
	Type   string         `json:"type"`
	Time   time.Time      `json:"time"`
	Fields map[string]any `json:"fields"`

	// ClockSkew is set by the server, never sent: how far the server
	// found the device's clock behind (positive) or ahead (negative) of
	// its own when the batch arrived, already added to Time. Zero when the
	// clock was within the server's tolerance.
	ClockSkew time.Duration `json:"-"`
}

// Batch is what an agent uploads at once. Its ID makes resends idempotent.
type Batch struct {
	ID              string    `json:"batch_id"`
	InstallationID  string    `json:"installation_id"`
	Region          string    `json:"region"`
	ManifestVersion string    `json:"manifest_version"`
	SentAt          time.Time `json:"sent_at"`
	Events          []Event   `json:"events"`
}

// Region ids: the territories whose terms a manifest item can be declared for.
const (
	RegionEU         = "eu"
	RegionUK         = "uk"
	RegionBrazil     = "br"
	RegionCalifornia = "us-ca"
)

// Recipient ids: who may receive a manifest item.
const (
	RecipientVendor          = "vendor"
	RecipientGoogleAnalytics = "google_analytics"
	RecipientThirdParty      = "third_party"
)

// Ids of the manifest items the server derives from the connection. Ingest
// adds them to the events whose type the manifest declares them for, and
// only there: an event is the one place the location lives.
const (
	ItemCountry     = "location.country"
	ItemSubdivision = "location.subdivision"
)

// Location is the coarse location the event carries; "" for what it does
// not carry.
func (e *Event) Location() (country, subdivision string) {
	country, _ = e.Fields[ItemCountry].(string)
	subdivision, _ = e.Fields[ItemSubdivision].(string)
	return country, subdivision
}
