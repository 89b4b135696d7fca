package manifest

import (
	"fmt"
	"html"
	"strings"
)

// style is what differs between the Markdown, plain-text and HTML
// renderings. Text handed to a style is raw: the style escapes it.
type style interface {
	begin(title string) string
	end() string
	rule() string
	heading(level int, s string) string
	para(s string) string // s is already rendered
	listStart() string
	item(s string) string // s is already rendered
	listEnd() string
	quote(s string) string // a quotation of the terms, raw
	code(s string) string  // raw
	esc(s string) string
	strong(s string) string // raw
}

type markdown struct{}

func (markdown) begin(string) string { return "" }
func (markdown) end() string         { return "" }
func (markdown) rule() string        { return "---\n\n" }
func (markdown) heading(level int, s string) string {
	return strings.Repeat("#", level) + " " + s + "\n\n"
}
func (markdown) para(s string) string   { return s + "\n\n" }
func (markdown) listStart() string      { return "" }
func (markdown) item(s string) string   { return "- " + s + "\n" }
func (markdown) listEnd() string        { return "\n" }
func (markdown) quote(s string) string  { return "“" + s + "”" }
func (markdown) code(s string) string   { return "`" + s + "`" }
func (markdown) esc(s string) string    { return s }
func (markdown) strong(s string) string { return "**" + s + "**" }

type plain struct{}

func (plain) begin(string) string { return "" }
func (plain) end() string         { return "" }
func (plain) rule() string        { return strings.Repeat("=", 72) + "\n\n" }
func (plain) heading(level int, s string) string {
	switch level {
	case 1:
		return s + "\n" + strings.Repeat("=", len([]rune(s))) + "\n\n"
	case 2:
		return s + "\n" + strings.Repeat("-", len([]rune(s))) + "\n\n"
	}
	return s + "\n\n"
}
func (plain) para(s string) string   { return s + "\n\n" }
func (plain) listStart() string      { return "" }
func (plain) item(s string) string   { return "  * " + s + "\n" }
func (plain) listEnd() string        { return "\n" }
func (plain) quote(s string) string  { return "“" + s + "”" }
func (plain) code(s string) string   { return s }
func (plain) esc(s string) string    { return s }
func (plain) strong(s string) string { return s }

type htmlStyle struct{}

func (htmlStyle) begin(title string) string {
	return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" + html.EscapeString(title) +
		"</title>\n</head>\n<body>\n"
}
func (htmlStyle) end() string  { return "</body>\n</html>\n" }
func (htmlStyle) rule() string { return "<hr>\n" }
func (htmlStyle) heading(level int, s string) string {
	return fmt.Sprintf("<h%d>%s</h%d>\n", level, html.EscapeString(s), level)
}
func (htmlStyle) para(s string) string   { return "<p>" + s + "</p>\n" }
func (htmlStyle) listStart() string      { return "<ul>\n" }
func (htmlStyle) item(s string) string   { return "<li>" + s + "</li>\n" }
func (htmlStyle) listEnd() string        { return "</ul>\n" }
func (htmlStyle) quote(s string) string  { return "<q>" + html.EscapeString(s) + "</q>" }
func (htmlStyle) code(s string) string   { return "<code>" + html.EscapeString(s) + "</code>" }
func (htmlStyle) esc(s string) string    { return html.EscapeString(s) }
func (htmlStyle) strong(s string) string { return "<strong>" + html.EscapeString(s) + "</strong>" }

// inline renders text in which `backticks` mark commands and names.
func inline(st style, s string) string {
	parts := strings.Split(s, "`")
	var b strings.Builder
	for i, p := range parts {
		if i%2 == 1 && i < len(parts)-1 {
			b.WriteString(st.code(p))
		} else {
			if i%2 == 1 {
				b.WriteString(st.esc("`"))
			}
			b.WriteString(st.esc(p))
		}
	}
	return b.String()
}

func quotes(st style, qs []string) string {
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = st.quote(q)
	}
	return strings.Join(out, "; ")
}

func itemList(st style, ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = st.code(id)
	}
	return strings.Join(out, ", ")
}

// renderNotice writes the complete notice of one region: who is
// responsible, what is collected for which purpose and on which basis, who
// receives it, where and under which terms, every item with the words of
// the terms that allow it, and the person's rights.
func renderNotice(b *strings.Builder, st style, n *Notice) {
	rn := &n.Region
	b.WriteString(st.heading(1, fmt.Sprintf("%s: what is sent, why, and to whom (%s)", n.Product, rn.Name)))
	b.WriteString(st.para(st.esc(fmt.Sprintf("%s. This notice applies to: %s, under %s. Manifest version %s.", n.Terms, rn.Name, rn.Law, n.Version))))
	b.WriteString(st.para(st.esc("The data listed here contain no personal data of the user unless an item says otherwise below.")))

	b.WriteString(st.heading(2, "Who is responsible"))
	b.WriteString(st.para(st.strong(n.Controller.Name) + st.esc(", "+n.Controller.Address+".")))
	b.WriteString(st.para(st.esc("How to contact: ") + inline(st, n.Controller.Contact)))

	b.WriteString(st.heading(2, "What is collected, why, and on which legal basis"))
	for _, p := range n.Purposes {
		b.WriteString(st.heading(3, p.Description))
		b.WriteString(st.para(st.esc("In the terms: ") + st.quote(p.Quote)))
		b.WriteString(st.para(st.esc("Legal basis: " + p.LegalBasisText + ".")))
		if p.Publication != "" {
			b.WriteString(st.para(st.esc("What is published: " + p.Publication)))
		}
		if len(p.Items) > 0 {
			b.WriteString(st.para(st.esc("Items: ") + itemList(st, p.Items)))
		}
	}

	b.WriteString(st.heading(2, "Who receives it, where, and for how long"))
	for _, r := range n.Recipients {
		b.WriteString(st.heading(3, "Sent to "+r.Description))
		b.WriteString(st.listStart())
		b.WriteString(st.item(st.esc("Items: ") + itemList(st, r.Items)))
		b.WriteString(st.item(st.esc("In the terms: ") + quotes(st, r.Quotes)))
		where := "Where it is processed: " + r.ProcessingCountries
		if r.LowerProtection {
			where += " The level of data protection there may be lower than where you live or use the software."
		}
		b.WriteString(st.item(st.esc(where)))
		b.WriteString(st.item(st.esc("Safeguards: " + r.Safeguards)))
		ret := "How long it is kept: " + r.Retention
		if r.RetentionDays > 0 {
			ret += fmt.Sprintf(" (%d days)", r.RetentionDays)
		}
		b.WriteString(st.item(st.esc(ret)))
		b.WriteString(st.item(st.esc("Governing terms: " + r.Terms)))
		b.WriteString(st.listEnd())
	}

	b.WriteString(st.heading(2, "Every item in detail"))
	for _, c := range n.Categories {
		var lines []string
		for _, it := range n.Items {
			if it.Category == c.ID {
				lines = append(lines, itemDetail(st, &it))
			}
		}
		if len(lines) == 0 {
			continue
		}
		b.WriteString(st.heading(3, c.Description))
		b.WriteString(st.listStart())
		for _, l := range lines {
			b.WriteString(st.item(l))
		}
		b.WriteString(st.listEnd())
	}

	b.WriteString(st.heading(2, "Your rights"))
	b.WriteString(st.listStart())
	for _, r := range []struct {
		name  string
		right Right
	}{
		{"Access", n.Rights.Access},
		{"Erasure", n.Rights.Erasure},
		{"Objection", n.Rights.Objection},
		{"Withdrawing consent", n.Rights.WithdrawConsent},
	} {
		b.WriteString(st.item(st.strong(r.name) + st.esc(": "+r.right.Description+" ") + inline(st, r.right.How)))
	}
	b.WriteString(st.item(st.strong("Complaint") + st.esc(": you may complain to "+rn.Authority+".")))
	b.WriteString(st.listEnd())

	if rn.Statement != "" {
		b.WriteString(st.heading(2, "Sale or sharing of personal information ("+rn.Name+")"))
		b.WriteString(st.para(st.esc(rn.Statement)))
	}
}

func itemDetail(st style, it *DisclosureItem) string {
	var b strings.Builder
	b.WriteString(st.code(it.ID) + st.esc(": "+it.Description))
	b.WriteString(st.esc(fmt.Sprintf(" %s%s; kept for %d days; sent to: %s.",
		strings.ToUpper(it.TypeDetail[:1]), it.TypeDetail[1:], it.RetentionDays, strings.Join(it.Recipients, ", "))))
	if it.Source == SourceServer {
		b.WriteString(st.esc(" Derived by the server, never sent by the device."))
	}
	switch it.Personal {
	case PersonalNone:
		b.WriteString(st.esc(" Not personal data."))
	default:
		b.WriteString(st.esc(fmt.Sprintf(" Treated as %s data: %s", it.Personal, it.PersonalReason)))
	}
	if len(it.PersonalDataCheck) > 0 {
		b.WriteString(st.esc(" Refused if it holds: " + checkWords(it.PersonalDataCheck) + "."))
	}
	b.WriteString(st.esc(" Allowed by the terms: ") + quotes(st, it.Quotes))
	return b.String()
}

func checkWords(names []string) string {
	words := map[string]string{
		"email":      "an email address",
		"ip_address": "an IP address",
		"user_path":  "a path with a user's name",
		"digit_run":  "a card- or phone-like number",
	}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = words[n]
	}
	return strings.Join(out, ", ")
}
