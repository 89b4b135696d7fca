package forward

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/manifest"
)

// FieldMapping is one manifest item and where it goes at each recipient.
type FieldMapping struct {
	Item        string   `json:"item"`
	Description string   `json:"description"`
	Type        string   `json:"type"`
	GA4         []string `json:"google_analytics,omitempty"` // client_id or event parameter names
	ThirdParty  string   `json:"third_party,omitempty"`      // JSON path in the webhook body
	Regions     []string `json:"regions"`
}

// Recipients are the recipients a forwarder exists for.
var Recipients = []string{provision.RecipientGoogleAnalytics, provision.RecipientThirdParty}

// FieldMappings derives the field mapping from the manifest: every item of
// the batch envelope or of a user_count event that some region declares for
// a forwarding recipient. It is what SelectFields and the senders do, so the
// documentation cannot drift from the code.
func FieldMappings(m *manifest.Manifest) []FieldMapping {
	var out []FieldMapping
	for _, it := range m.Items {
		if !m.InEvent(it, EventType) && !(m.InEvent(it, manifest.BatchEvent) && it.ID == InstallationItem) {
			continue
		}
		fm := FieldMapping{Item: it.ID, Description: it.Description, Type: it.Type.String()}
		for _, region := range m.Terms.Regions {
			if !it.ForRegion(region) {
				continue
			}
			declared := false
			if it.ForRecipient(provision.RecipientGoogleAnalytics) {
				declared = true
				fm.GA4 = ga4Names(it)
			}
			if it.ForRecipient(provision.RecipientThirdParty) {
				declared = true
				fm.ThirdParty = "fields." + it.ID
			}
			if declared {
				fm.Regions = append(fm.Regions, region)
			}
		}
		if len(fm.Regions) > 0 {
			out = append(out, fm)
		}
	}
	return out
}

func ga4Names(it *manifest.Item) []string {
	name := ParamName(it.ID)
	switch {
	case it.ID == InstallationItem:
		return []string{"client_id"}
	case it.Type.Kind == manifest.KindList:
		return []string{name + "_count", name + "_latest", name + "_sha256"}
	}
	return []string{name}
}

// Output formats of WriteFieldTable.
const (
	FormatMarkdown = "md"
	FormatText     = "text"
	FormatJSON     = "json"
)

// WriteFieldTable writes the field mapping in the format.
func WriteFieldTable(w io.Writer, m *manifest.Manifest, format string) error {
	rows := FieldMappings(m)
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Manifest string         `json:"manifest_version"`
			Event    string         `json:"event"`
			Fields   []FieldMapping `json:"fields"`
		}{m.Version, EventType, rows})
	case FormatMarkdown:
		var b strings.Builder
		fmt.Fprintf(&b, "Generated from manifest %s by `provision forward fields --format md`.\n\n", m.Version)
		b.WriteString("| Item | Google Analytics 4 | Third-party webhook | Regions | Type |\n|---|---|---|---|---|\n")
		for _, r := range rows {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", r.Item, codeList(r.GA4), codeList(nonEmpty(r.ThirdParty)),
				strings.Join(r.Regions, ", "), strings.ReplaceAll(r.Type, "|", "\\|"))
		}
		_, err := io.WriteString(w, b.String())
		return err
	case FormatText, "":
		var b strings.Builder
		fmt.Fprintf(&b, "Fields forwarded under manifest %s (event %s):\n", m.Version, EventType)
		for _, r := range rows {
			fmt.Fprintf(&b, "  %s\n    google_analytics: %s\n    third_party:      %s\n    regions:          %s\n",
				r.Item, orDash(strings.Join(r.GA4, ", ")), orDash(r.ThirdParty), strings.Join(r.Regions, ", "))
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	return fmt.Errorf("unknown format %q (md, text or json)", format)
}

func codeList(s []string) string {
	if len(s) == 0 {
		return "—"
	}
	q := slices.Clone(s)
	for i := range q {
		q[i] = "`" + q[i] + "`"
	}
	return strings.Join(q, ", ")
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
