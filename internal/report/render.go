package report

import (
	"embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// Document is a built report.
type Document interface {
	Tables() []Table
	Charts() []Chart
	Heading() string
}

// Heading names the quality report.
func (q *Quality) Heading() string { return fmt.Sprintf("Quality report %s to %s", q.From, q.To) }

// Heading names the threat report.
func (t *Threats) Heading() string { return fmt.Sprintf("Threat trends %s to %s", t.From, t.To) }

// Formats the reports can be written in.
var Formats = []string{"json", "csv", "md", "html"}

// ContentType is the media type of a format.
func ContentType(format string) string {
	switch format {
	case "json":
		return "application/json"
	case "csv":
		return "text/csv; charset=utf-8"
	case "md":
		return "text/markdown; charset=utf-8"
	case "html":
		return "text/html; charset=utf-8"
	}
	return "application/octet-stream"
}

// Write writes d in format.
func Write(w io.Writer, d Document, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	case "csv":
		return writeCSV(w, d)
	case "md":
		return writeMarkdown(w, d)
	case "html":
		return WriteHTML(w, d)
	}
	return fmt.Errorf("%w: unknown format %q (want one of %s)", ErrBadOptions, format, strings.Join(Formats, ", "))
}

// writeCSV writes each table as a block whose rows start with the table's
// name, so one file holds every section and filters by its first column.
func writeCSV(w io.Writer, d Document) error {
	cw := csv.NewWriter(w)
	for _, t := range d.Tables() {
		if err := cw.Write(append([]string{"table"}, t.Columns...)); err != nil {
			return err
		}
		for _, r := range t.Rows {
			if err := cw.Write(append([]string{t.Name}, r...)); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func writeMarkdown(w io.Writer, d Document) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\nFigures below k installations are shown as `%s`.\n", d.Heading(), suppressedMark)
	for _, t := range d.Tables() {
		fmt.Fprintf(&b, "\n## %s\n\n", t.Title)
		if len(t.Rows) == 0 {
			b.WriteString("(none)\n")
			continue
		}
		b.WriteString("| " + strings.Join(t.Columns, " | ") + " |\n|")
		for range t.Columns {
			b.WriteString(" --- |")
		}
		b.WriteString("\n")
		for _, r := range t.Rows {
			cells := make([]string, len(t.Columns))
			for i := range cells {
				if i < len(r) {
					cells[i] = mdCell(r[i])
				}
			}
			b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

//go:embed templates/*.html
var templateFS embed.FS

var pageTemplate = template.Must(template.ParseFS(templateFS, "templates/*.html"))

// WriteHTML writes d as one self-contained HTML file: inline CSS and SVG,
// no script, nothing fetched.
func WriteHTML(w io.Writer, d Document) error {
	s, err := Layout(d)
	if err != nil {
		return err
	}
	return pageTemplate.ExecuteTemplate(w, "page.html", s)
}

// SectionHTML renders only the body of a report, for embedding.
func SectionHTML(d Document) (template.HTML, error) {
	s, err := Layout(d)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	if err := pageTemplate.ExecuteTemplate(&b, "section.html", s); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil // produced by html/template
}

// Stylesheet is the CSS of a report section, for pages that embed
// sections (the dashboard serves it as a file).
func Stylesheet() string {
	var b strings.Builder
	if err := pageTemplate.ExecuteTemplate(&b, "style", nil); err != nil {
		panic(err) // a fixed template without data: cannot fail at run time
	}
	return b.String()
}
