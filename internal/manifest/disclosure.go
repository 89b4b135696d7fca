package manifest

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Disclosure formats.
const (
	FormatMarkdown = "md"
	FormatText     = "text"
	FormatJSON     = "json"
	FormatHTML     = "html"
)

// Formats lists the disclosure formats.
var Formats = []string{FormatMarkdown, FormatText, FormatJSON, FormatHTML}

// DisclosureItem is one item as the notice lists it.
type DisclosureItem struct {
	ID                string   `json:"id"`
	Description       string   `json:"description"`
	Quotes            []string `json:"quotes"`
	Category          string   `json:"category"`
	Type              string   `json:"type"`
	TypeDetail        string   `json:"type_detail"`
	Purposes          []string `json:"purposes"`
	Recipients        []string `json:"recipients"`
	Regions           []string `json:"regions"`
	Personal          string   `json:"personal"`
	PersonalReason    string   `json:"personal_reason,omitempty"`
	RetentionDays     int      `json:"retention_days"`
	Events            []string `json:"events"`
	Source            string   `json:"source"`
	PersonalDataCheck []string `json:"personal_data_check,omitempty"` // patterns a value is refused for
}

// NoticePurpose is a purpose with the legal basis it rests on under the
// region's law and the items that serve it there.
type NoticePurpose struct {
	Purpose
	LegalBasisText string   `json:"legal_basis_text"`
	Items          []string `json:"items"`
}

// NoticeRecipient is a recipient with the items it receives in the region.
type NoticeRecipient struct {
	Recipient
	Items []string `json:"items"`
}

// Notice is the complete notice for one region: everything the terms say,
// in the structure the renderings follow.
type Notice struct {
	Version    string            `json:"version"`
	Product    string            `json:"product"`
	Terms      string            `json:"terms"`
	Region     RegionNotice      `json:"region"`
	Controller Controller        `json:"controller"`
	Purposes   []NoticePurpose   `json:"purposes"`
	Recipients []NoticeRecipient `json:"recipients"`
	Categories []Category        `json:"categories"`
	Items      []DisclosureItem  `json:"items"`
	Rights     Rights            `json:"rights"`
}

// Notice returns the notice for the region, which must be one of the
// terms' regions.
func (m *Manifest) Notice(region string) (Notice, error) {
	rn := m.RegionNotice(region)
	if rn == nil {
		return Notice{}, fmt.Errorf("manifest %s has no notice for region %q (regions: %s)", m.Version, region, strings.Join(m.Terms.Regions, ", "))
	}
	n := Notice{
		Version: m.Version, Product: m.Terms.Product, Terms: m.Terms.Title, Region: *rn,
		Controller: m.Controller, Categories: m.Categories, Rights: m.Rights,
		Purposes: []NoticePurpose{}, Recipients: []NoticeRecipient{}, Items: []DisclosureItem{},
	}
	items := m.regionItems(region)
	for _, p := range m.Purposes {
		np := NoticePurpose{Purpose: p, LegalBasisText: rn.Bases[p.LegalBasis], Items: []string{}}
		for _, it := range items {
			if slices.Contains(it.Purposes, p.ID) {
				np.Items = append(np.Items, it.ID)
			}
		}
		n.Purposes = append(n.Purposes, np)
	}
	for _, r := range m.Recipients {
		nr := NoticeRecipient{Recipient: r, Items: []string{}}
		for _, it := range items {
			if it.ForRecipient(r.ID) {
				nr.Items = append(nr.Items, it.ID)
			}
		}
		if len(nr.Items) > 0 {
			n.Recipients = append(n.Recipients, nr)
		}
	}
	for _, it := range items {
		n.Items = append(n.Items, disclosureItem(it))
	}
	return n, nil
}

func disclosureItem(it *Item) DisclosureItem {
	checks := it.Type.PersonalChecks
	if it.Type.Of != nil {
		checks = it.Type.Of.PersonalChecks
	}
	d := DisclosureItem{
		ID: it.ID, Description: it.Description, Quotes: it.Quotes, Category: it.Category,
		Type: it.Type.Kind, TypeDetail: it.Type.String(),
		Purposes: it.Purposes, Recipients: it.Recipients, Regions: it.Regions,
		Personal: it.Personal, PersonalReason: it.PersonalReason,
		RetentionDays: it.RetentionDays, Events: it.Events, Source: it.Source,
	}
	if checks != 0 {
		d.PersonalDataCheck = checks.Names()
	}
	return d
}

func (m *Manifest) regionItems(region string) []*Item {
	var out []*Item
	for _, it := range m.Items {
		if it.ForRegion(region) {
			out = append(out, it)
		}
	}
	return out
}

// WriteDisclosure renders the notice of the region in the format (md,
// text, json or html). An empty region renders the notice of every region
// of the terms, each complete on its own.
func (m *Manifest) WriteDisclosure(w io.Writer, format, region string) error {
	if !slices.Contains(Formats, format) {
		return fmt.Errorf("unknown format %q (use %s)", format, strings.Join(Formats, ", "))
	}
	regions := m.Terms.Regions
	if region != "" {
		regions = []string{region}
	}
	notices := make([]Notice, 0, len(regions))
	for _, r := range regions {
		n, err := m.Notice(r)
		if err != nil {
			return err
		}
		notices = append(notices, n)
	}
	if format == FormatJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if region != "" {
			return enc.Encode(notices[0])
		}
		return enc.Encode(struct {
			Notices []Notice `json:"notices"`
		}{notices})
	}
	var st style
	switch format {
	case FormatMarkdown:
		st = markdown{}
	case FormatText:
		st = plain{}
	case FormatHTML:
		st = htmlStyle{}
	}
	var b strings.Builder
	b.WriteString(st.begin(m.Terms.Product + ": data provision notice"))
	for i, n := range notices {
		if i > 0 {
			b.WriteString(st.rule())
		}
		renderNotice(&b, st, &n)
	}
	b.WriteString(st.end())
	_, err := io.WriteString(w, b.String())
	return err
}
