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
)

// DisclosureItem is one item as the JSON disclosure lists it.
type DisclosureItem struct {
	ID             string   `json:"id"`
	Description    string   `json:"description"`
	Category       string   `json:"category"`
	Type           string   `json:"type"`
	TypeDetail     string   `json:"type_detail"`
	Purposes       []string `json:"purposes"`
	Recipients     []string `json:"recipients"`
	Regions        []string `json:"regions"`
	Personal       string   `json:"personal"`
	PersonalReason string   `json:"personal_reason,omitempty"`
	RetentionDays  int      `json:"retention_days"`
	Events         []string `json:"events"`
	Source         string   `json:"source"`
}

// Disclosure is the JSON form of the disclosure.
type Disclosure struct {
	Version     string              `json:"version"`
	Product     string              `json:"product"`
	Terms       string              `json:"terms"`
	Regions     []string            `json:"regions"`
	Purposes    []Purpose           `json:"purposes"`
	Items       []DisclosureItem    `json:"items"`
	ByPurpose   map[string][]string `json:"by_purpose"`
	ByRecipient map[string][]string `json:"by_recipient"`
}

// Disclosure returns the structured disclosure of the manifest.
func (m *Manifest) Disclosure() Disclosure {
	d := Disclosure{
		Version:     m.Version,
		Product:     m.Terms.Product,
		Terms:       m.Terms.Title,
		Regions:     m.Terms.Regions,
		Purposes:    m.Purposes,
		ByPurpose:   map[string][]string{},
		ByRecipient: map[string][]string{},
	}
	for _, it := range m.Items {
		d.Items = append(d.Items, DisclosureItem{
			ID: it.ID, Description: it.Description, Category: it.Category,
			Type: it.Type.Kind, TypeDetail: it.Type.String(),
			Purposes: it.Purposes, Recipients: it.Recipients, Regions: it.Regions,
			Personal: it.Personal, PersonalReason: it.PersonalReason,
			RetentionDays: it.RetentionDays, Events: it.Events, Source: it.Source,
		})
		for _, p := range it.Purposes {
			d.ByPurpose[p] = append(d.ByPurpose[p], it.ID)
		}
		for _, r := range it.Recipients {
			d.ByRecipient[r] = append(d.ByRecipient[r], it.ID)
		}
	}
	return d
}

// WriteDisclosure renders the disclosure in the format (md, text or json).
func (m *Manifest) WriteDisclosure(w io.Writer, format string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(m.Disclosure())
	case FormatMarkdown:
		_, err := io.WriteString(w, m.render(markdown{}))
		return err
	case FormatText:
		_, err := io.WriteString(w, m.render(plain{}))
		return err
	}
	return fmt.Errorf("unknown format %q (use md, text or json)", format)
}

// style is what differs between the Markdown and plain-text renderings.
type style interface {
	heading(level int, s string) string
	bullet(s string) string
	code(s string) string
}

type markdown struct{}

func (markdown) heading(level int, s string) string {
	return strings.Repeat("#", level) + " " + s + "\n\n"
}
func (markdown) bullet(s string) string { return "- " + s + "\n" }
func (markdown) code(s string) string   { return "`" + s + "`" }

type plain struct{}

func (plain) heading(level int, s string) string {
	underline := "="
	if level > 1 {
		underline = "-"
	}
	if level > 2 {
		return s + "\n\n"
	}
	return s + "\n" + strings.Repeat(underline, len([]rune(s))) + "\n\n"
}
func (plain) bullet(s string) string { return "  * " + s + "\n" }
func (plain) code(s string) string   { return s }

func (m *Manifest) render(st style) string {
	var b strings.Builder
	b.WriteString(st.heading(1, "What "+m.Terms.Product+" sends, why, and to whom"))
	fmt.Fprintf(&b, "%s.\nManifest version %s. These terms apply in: %s.\n\n",
		m.Terms.Title, m.Version, regionNames(m.Terms.Regions))

	b.WriteString(st.heading(2, "By purpose"))
	for _, p := range m.Purposes {
		b.WriteString(st.heading(3, p.Description))
		for _, it := range m.Items {
			if slices.Contains(it.Purposes, p.ID) {
				b.WriteString(st.bullet(m.itemLine(st, it)))
			}
		}
		b.WriteString("\n")
	}

	b.WriteString(st.heading(2, "By recipient"))
	for _, r := range Recipients {
		var lines []string
		for _, it := range m.Items {
			if it.ForRecipient(r) {
				lines = append(lines, st.bullet(st.code(it.ID)+": "+it.Description))
			}
		}
		if len(lines) == 0 {
			continue
		}
		b.WriteString(st.heading(3, "Sent to "+RecipientDescriptions[r]))
		b.WriteString(strings.Join(lines, ""))
		b.WriteString("\n")
	}

	b.WriteString(st.heading(2, "Every item in detail"))
	for _, c := range m.Categories {
		b.WriteString(st.heading(3, c.Description))
		for _, it := range m.Items {
			if it.Category != c.ID {
				continue
			}
			b.WriteString(st.bullet(m.itemLine(st, it)))
			detail := fmt.Sprintf("  %s; kept for %d days; regions: %s; recipients: %s",
				it.Type.String(), it.RetentionDays, strings.Join(it.Regions, ", "), strings.Join(it.Recipients, ", "))
			if it.Source == SourceServer {
				detail += "; derived by the server, never sent by the device"
			}
			b.WriteString(detail + "\n")
			switch it.Personal {
			case PersonalNone:
				b.WriteString("  Not personal data.\n")
			default:
				fmt.Fprintf(&b, "  Treated as %s data: %s\n", it.Personal, it.PersonalReason)
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func (m *Manifest) itemLine(st style, it *Item) string {
	return st.code(it.ID) + ": " + it.Description
}

func regionNames(ids []string) string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = RegionDescriptions[id]
	}
	return strings.Join(names, ", ")
}
