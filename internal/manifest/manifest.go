// Package manifest loads the data manifest — the declaration of every data
// item the product may send — checks it, validates events against it and
// renders the disclosure text that a licence or privacy notice includes.
//
// The manifest is the single source of truth: the agent's collectors, the
// server's validation, the forwarders' field lists and retention all read it,
// so what the disclosure says and what the code does cannot drift apart.
package manifest

import (
	_ "embed"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/provisionhq/provision"
)

//go:embed reference.yaml
var referenceYAML []byte

// ReferenceYAML returns the text of the embedded reference manifest.
func ReferenceYAML() []byte { return slices.Clone(referenceYAML) }

// Reference returns the embedded reference manifest, which implements the
// data-provision terms of the reference product. It is parsed once and
// shared: a Manifest is immutable.
var Reference = sync.OnceValue(func() *Manifest {
	m, err := Parse("reference.yaml", referenceYAML)
	if err != nil {
		// The embedded manifest is checked by the tests; failing here means
		// the binary was built from a broken tree.
		panic(fmt.Sprintf("embedded reference manifest: %v", err))
	}
	return m
})

// Known region and recipient ids. A manifest naming any other is rejected.
var (
	Regions    = []string{provision.RegionEU, provision.RegionUK, provision.RegionBrazil, provision.RegionCalifornia}
	Recipients = []string{provision.RecipientVendor, provision.RecipientGoogleAnalytics, provision.RecipientThirdParty}
)

// Legal bases a purpose may rest on; each region notice says which article
// of its law each basis is.
var LegalBases = []string{"consent", "contract", "legitimate_interests", "legal_obligation"}

// Personal-data levels.
const (
	PersonalNone         = "none"
	PersonalPseudonymous = "pseudonymous"
	PersonalPersonal     = "personal"
)

// Sources of an item's value.
const (
	SourceDevice = "device" // collected by the agent on the device
	SourceServer = "server" // derived by the server; an agent may never send it
)

// BatchEvent is the pseudo event type of items carried once per batch, in
// its envelope, rather than inside each event (the installation id).
const BatchEvent = "batch"

// Manifest is a loaded and checked manifest. It is immutable and safe for
// concurrent use.
type Manifest struct {
	Version       string
	Terms         Terms
	Controller    Controller
	Purposes      []Purpose
	Recipients    []Recipient
	RegionNotices []RegionNotice
	Rights        Rights
	Categories    []Category
	EventTypes    []EventType
	Items         []*Item

	file       string
	items      map[string]*Item
	eventTypes map[string]*EventType
}

// Terms names the legal text this manifest implements.
type Terms struct {
	Product string
	Title   string
	Regions []string
}

// Controller is who decides what is done with the data, and how to reach it.
type Controller struct {
	Name    string `json:"name"`
	Address string `json:"address"`
	Contact string `json:"contact"`
}

// Purpose is one declared reason for collecting data, with the words of
// the terms that state it and the legal basis it rests on.
type Purpose struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Quote       string `json:"quote"`
	LegalBasis  string `json:"legal_basis"`
	Publication string `json:"publication,omitempty"` // what is published, for a purpose that publishes
}

// Recipient is who receives data, where it is processed, how it is
// protected, how long it is kept and which terms govern it there.
type Recipient struct {
	ID                  string   `json:"id"`
	Description         string   `json:"description"`
	Quotes              []string `json:"quotes"`
	ProcessingCountries string   `json:"processing_countries"`
	LowerProtection     bool     `json:"lower_protection"`
	Safeguards          string   `json:"safeguards"`
	Retention           string   `json:"retention"`
	RetentionDays       int      `json:"retention_days,omitempty"` // 0 for the vendor, whose retention is per item
	Terms               string   `json:"terms"`
}

// RegionNotice is what the notice says under the law of one region.
type RegionNotice struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Law       string            `json:"law"`
	Bases     map[string]string `json:"legal_bases"` // legal basis id -> the law's words for it
	Authority string            `json:"authority"`
	Statement string            `json:"statement,omitempty"` // a statement the region's law requires, such as California's on sale or sharing
}

// Right is one right of the person and how to use it in the product.
type Right struct {
	Description string `json:"description"`
	How         string `json:"how"`
}

// Rights are the rights every notice states.
type Rights struct {
	Access          Right `json:"access"`
	Erasure         Right `json:"erasure"`
	Objection       Right `json:"objection"`
	WithdrawConsent Right `json:"withdraw_consent"`
}

// Category groups items the way the terms list them.
type Category struct {
	ID          string `json:"id"`
	Description string `json:"description"`
}

// EventType is one kind of event and the items it must carry.
type EventType struct {
	ID          string
	Description string
	Required    []string

	index    int
	required []*Item
}

// Item is one declared data item.
type Item struct {
	ID             string
	Description    string
	Quotes         []string // the words of the terms that allow the item, verbatim
	Type           Type
	Category       string
	Purposes       []string
	Recipients     []string
	Regions        []string
	Personal       string
	PersonalReason string
	RetentionDays  int
	Events         []string
	Source         string

	eventMask     uint64
	regionMask    uint8
	recipientMask uint8
}

// Retention is how long raw values of the item may be kept.
func (it *Item) Retention() time.Duration {
	return time.Duration(it.RetentionDays) * 24 * time.Hour
}

// InEvent reports whether the item is declared for the event type.
func (m *Manifest) InEvent(it *Item, eventType string) bool {
	et, ok := m.eventTypes[eventType]
	return ok && it.eventMask&(1<<et.index) != 0
}

// ForRegion reports whether the item is declared for the region.
func (it *Item) ForRegion(region string) bool {
	return it.regionMask&regionBit(region) != 0
}

// ForRecipient reports whether the item may be sent to the recipient.
func (it *Item) ForRecipient(recipient string) bool {
	return it.recipientMask&recipientBit(recipient) != 0
}

// Recipient returns the recipient with the id, or nil.
func (m *Manifest) Recipient(id string) *Recipient {
	for i := range m.Recipients {
		if m.Recipients[i].ID == id {
			return &m.Recipients[i]
		}
	}
	return nil
}

// RegionNotice returns the notice of the region, or nil.
func (m *Manifest) RegionNotice(id string) *RegionNotice {
	for i := range m.RegionNotices {
		if m.RegionNotices[i].ID == id {
			return &m.RegionNotices[i]
		}
	}
	return nil
}

// Item returns the item with the id, or nil.
func (m *Manifest) Item(id string) *Item { return m.items[id] }

// EventType returns the event type with the id, or nil.
func (m *Manifest) EventType(id string) *EventType { return m.eventTypes[id] }

// File is the name the manifest was loaded from.
func (m *Manifest) File() string { return m.file }

// ItemsFor returns the items of the event type that may go to the recipient
// in the region, in manifest order. Forwarders take their field lists here.
func (m *Manifest) ItemsFor(eventType, recipient, region string) []*Item {
	var out []*Item
	for _, it := range m.Items {
		if m.InEvent(it, eventType) && it.ForRecipient(recipient) && it.ForRegion(region) {
			out = append(out, it)
		}
	}
	return out
}

// MaxRetention is the longest retention of any item of the event type; raw
// events of that type older than it hold nothing that may still be kept.
func (m *Manifest) MaxRetention(eventType string) time.Duration {
	var longest time.Duration
	for _, it := range m.Items {
		if m.InEvent(it, eventType) && it.Retention() > longest {
			longest = it.Retention()
		}
	}
	return longest
}

// regionBit and recipientBit are the bits of a known id in an item's masks,
// by its place in Regions or Recipients; 0 for an unknown id.
func regionBit(region string) uint8 { return bitOf(Regions, region) }

func recipientBit(recipient string) uint8 { return bitOf(Recipients, recipient) }

func bitOf(known []string, id string) uint8 {
	if i := slices.Index(known, id); i >= 0 {
		return 1 << i
	}
	return 0
}
