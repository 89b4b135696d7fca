package manifest

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/provisionhq/provision/internal/limitread"
)

// maxManifestBytes bounds the manifest file; a real one is a few dozen KiB.
const maxManifestBytes = 4 << 20

// Load reads and checks the manifest file at path.
func Load(path string) (*Manifest, error) {
	data, err := limitread.File(path, maxManifestBytes)
	if err != nil {
		return nil, err
	}
	return Parse(path, data)
}

// Parse checks the manifest text. file names it in error messages. Every
// problem found is reported, each as FILE:LINE:COLUMN: KEY: what is wrong.
func Parse(file string, data []byte) (*Manifest, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, fmt.Errorf("%s: empty manifest", file)
	}
	p := &parser{file: file}
	m := p.manifest(doc.Content[0])
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	m.file = file
	return m, nil
}

// parser walks the YAML tree by hand so that every error names its line and
// its key path, and so that unknown and repeated keys are errors.
type parser struct {
	file string
	errs []error
}

func (p *parser) fail(n *yaml.Node, path, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s:%d:%d: %s: %s", p.file, n.Line, n.Column, path, fmt.Sprintf(format, args...)))
}

// mapping returns the values of a mapping node by key. Keys outside allowed
// and repeated keys are reported.
func (p *parser) mapping(n *yaml.Node, path string, allowed ...string) map[string]*yaml.Node {
	if n.Kind != yaml.MappingNode {
		p.fail(n, path, "must be a mapping")
		return nil
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		switch {
		case !slices.Contains(allowed, k.Value):
			p.fail(k, kp, "unknown key (allowed: %s)", strings.Join(allowed, ", "))
		case out[k.Value] != nil:
			p.fail(k, kp, "repeated key")
		default:
			out[k.Value] = v
		}
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (p *parser) require(m map[string]*yaml.Node, parent *yaml.Node, path string, keys ...string) bool {
	ok := true
	for _, k := range keys {
		if m != nil && m[k] == nil {
			p.fail(parent, join(path, k), "missing")
			ok = false
		}
	}
	return ok && m != nil
}

func (p *parser) str(n *yaml.Node, path string) string {
	if n == nil {
		return ""
	}
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.fail(n, path, "must be a text value")
		return ""
	}
	return n.Value
}

var idPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)

func (p *parser) id(n *yaml.Node, path string) string {
	s := p.str(n, path)
	if n != nil && s != "" && !idPattern.MatchString(s) {
		p.fail(n, path, "%q is not an id (lowercase letters, digits, _ and . separated parts)", s)
	}
	return s
}

func (p *parser) text(n *yaml.Node, path string) string {
	s := strings.TrimSpace(p.str(n, path))
	if n != nil && s == "" {
		p.fail(n, path, "must not be empty")
	}
	return s
}

// bounded reads the integer f[key], which must be between lo and hi; unit,
// when given, follows the bounds in the message.
func (p *parser) bounded(f map[string]*yaml.Node, path, key string, lo, hi int64, unit string) int {
	v := p.integer(f[key], path+"."+key)
	if v < lo || v > hi {
		p.fail(f[key], path+"."+key, "must be between %d and %d%s", lo, hi, unit)
	}
	return int(v)
}

// sized reads a type whose one parameter (beside its kind) is the size
// key, between lo and hi; 0 when it is missing.
func (p *parser) sized(n *yaml.Node, path, key string, lo, hi int64) int {
	f := p.mapping(n, path, "kind", key)
	if !p.require(f, n, path, key) {
		return 0
	}
	return p.bounded(f, path, key, lo, hi, "")
}

// retentionDays reads f["retention_days"]: an item's or a recipient's
// retention, 1 to 3650 days.
func (p *parser) retentionDays(f map[string]*yaml.Node, path string) int {
	return p.bounded(f, path, "retention_days", 1, 3650, " days")
}

func (p *parser) integer(n *yaml.Node, path string) int64 {
	if n == nil {
		return 0
	}
	v, err := strconv.ParseInt(p.str(n, path), 10, 64)
	if err != nil {
		p.fail(n, path, "must be a whole number")
	}
	return v
}

func (p *parser) boolean(n *yaml.Node, path string) bool {
	if n == nil {
		return false
	}
	switch p.str(n, path) {
	case "true":
		return true
	case "false":
		return false
	}
	p.fail(n, path, "must be true or false")
	return false
}

func (p *parser) duration(n *yaml.Node, path string) time.Duration {
	if n == nil {
		return 0
	}
	d, err := time.ParseDuration(p.str(n, path))
	if err != nil {
		p.fail(n, path, "must be a duration such as 90s or 48h")
	}
	return d
}

// list returns the string values of a sequence, reporting repeats.
func (p *parser) list(n *yaml.Node, path string) []string {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.fail(n, path, "must be a list")
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, e := range n.Content {
		s := p.str(e, fmt.Sprintf("%s[%d]", path, i))
		if slices.Contains(out, s) {
			p.fail(e, fmt.Sprintf("%s[%d]", path, i), "%q is repeated", s)
			continue
		}
		out = append(out, s)
	}
	return out
}

// oneOf checks that every value of a list is known and that it is not empty.
func (p *parser) oneOf(n *yaml.Node, path, what string, values []string, known func(string) bool) {
	if n != nil && len(values) == 0 && n.Kind == yaml.SequenceNode {
		p.fail(n, path, "must name at least one %s", what)
	}
	for i, v := range values {
		if !known(v) {
			p.fail(n.Content[i], fmt.Sprintf("%s[%d]", path, i), "unknown %s %q", what, v)
		}
	}
}

func (p *parser) sequence(n *yaml.Node, path string) []*yaml.Node {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.fail(n, path, "must be a list")
		return nil
	}
	return n.Content
}

func (p *parser) manifest(n *yaml.Node) *Manifest {
	sections := []string{"version", "terms", "controller", "purposes", "recipients", "region_notices", "rights", "categories", "event_types", "items"}
	f := p.mapping(n, "", sections...)
	m := &Manifest{items: map[string]*Item{}, eventTypes: map[string]*EventType{}}
	if !p.require(f, n, "", sections...) {
		return m
	}
	m.Version = p.text(f["version"], "version")
	m.Terms = p.terms(f["terms"])
	m.Controller = p.controller(f["controller"])

	purposes := map[string]bool{}
	for i, e := range p.sequence(f["purposes"], "purposes") {
		path := fmt.Sprintf("purposes[%d]", i)
		pu, ok := p.purpose(e, path)
		if !ok {
			continue
		}
		if purposes[pu.ID] {
			p.fail(e, path+".id", "duplicate purpose id %q", pu.ID)
		}
		purposes[pu.ID] = true
		m.Purposes = append(m.Purposes, pu)
	}

	categories := map[string]bool{}
	for i, e := range p.sequence(f["categories"], "categories") {
		path := fmt.Sprintf("categories[%d]", i)
		cf := p.mapping(e, path, "id", "description")
		if !p.require(cf, e, path, "id", "description") {
			continue
		}
		c := Category{ID: p.id(cf["id"], path+".id"), Description: p.text(cf["description"], path+".description")}
		if categories[c.ID] {
			p.fail(cf["id"], path+".id", "duplicate category id %q", c.ID)
		}
		categories[c.ID] = true
		m.Categories = append(m.Categories, c)
	}

	requiredNodes := map[string]*yaml.Node{}
	for i, e := range p.sequence(f["event_types"], "event_types") {
		path := fmt.Sprintf("event_types[%d]", i)
		ef := p.mapping(e, path, "id", "description", "required")
		if !p.require(ef, e, path, "id", "description") {
			continue
		}
		et := &EventType{
			ID:          p.id(ef["id"], path+".id"),
			Description: p.text(ef["description"], path+".description"),
			Required:    p.list(ef["required"], path+".required"),
			index:       len(m.EventTypes),
		}
		switch {
		case et.ID == BatchEvent:
			p.fail(ef["id"], path+".id", "%q is reserved for items of the batch envelope", BatchEvent)
		case m.eventTypes[et.ID] != nil:
			p.fail(ef["id"], path+".id", "duplicate event type id %q", et.ID)
		case len(m.EventTypes) >= 63:
			p.fail(ef["id"], path+".id", "more than 63 event types")
		default:
			m.eventTypes[et.ID] = et
			m.EventTypes = append(m.EventTypes, *et)
			requiredNodes[et.ID] = ef["required"]
		}
	}
	m.Recipients = p.recipients(f["recipients"])
	m.RegionNotices = p.regionNotices(f["region_notices"], m)
	m.Rights = p.rights(f["rights"])

	// The batch envelope is an event type of its own for membership tests.
	m.eventTypes[BatchEvent] = &EventType{ID: BatchEvent, index: 63}

	for i, e := range p.sequence(f["items"], "items") {
		path := fmt.Sprintf("items[%d]", i)
		it := p.item(e, path, m, purposes, categories)
		if it == nil {
			continue
		}
		if m.items[it.ID] != nil {
			p.fail(e, path+".id", "duplicate item id %q", it.ID)
			continue
		}
		m.items[it.ID] = it
		m.Items = append(m.Items, it)
	}

	// Resolve required items now that all items are known, and point the
	// exported copies at the same slices.
	for i := range m.EventTypes {
		et := m.eventTypes[m.EventTypes[i].ID]
		for j, id := range et.Required {
			it := m.items[id]
			path := fmt.Sprintf("event_types[%d].required[%d]", i, j)
			switch {
			case it == nil:
				p.fail(requiredNodes[et.ID].Content[j], path, "unknown item %q", id)
			case !m.InEvent(it, et.ID):
				p.fail(requiredNodes[et.ID].Content[j], path, "item %q is not declared for event type %q", id, et.ID)
			default:
				et.required = append(et.required, it)
			}
		}
		m.EventTypes[i] = *et
	}
	for _, pu := range m.Purposes {
		if !slices.ContainsFunc(m.Items, func(it *Item) bool { return slices.Contains(it.Purposes, pu.ID) }) {
			p.fail(n, "purposes", "purpose %q is served by no item", pu.ID)
		}
	}
	return m
}

func (p *parser) terms(n *yaml.Node) Terms {
	f := p.mapping(n, "terms", "product", "title", "regions")
	if !p.require(f, n, "terms", "product", "title", "regions") {
		return Terms{}
	}
	t := Terms{
		Product: p.text(f["product"], "terms.product"),
		Title:   p.text(f["title"], "terms.title"),
		Regions: p.list(f["regions"], "terms.regions"),
	}
	p.oneOf(f["regions"], "terms.regions", "region", t.Regions, func(r string) bool { return regionBit(r) != 0 })
	return t
}

func (p *parser) item(n *yaml.Node, path string, m *Manifest, purposes, categories map[string]bool) *Item {
	f := p.mapping(n, path, "id", "description", "quotes", "type", "category", "purposes", "recipients",
		"regions", "personal", "retention_days", "events", "source", "personal_data_check")
	if !p.require(f, n, path, "id", "description", "quotes", "type", "category", "purposes", "recipients",
		"regions", "personal", "retention_days", "events") {
		return nil
	}
	it := &Item{
		ID:          p.id(f["id"], path+".id"),
		Description: p.text(f["description"], path+".description"),
		Quotes:      p.quotes(f["quotes"], path+".quotes"),
		Type:        p.typ(f["type"], path+".type", false),
		Category:    p.id(f["category"], path+".category"),
		Purposes:    p.list(f["purposes"], path+".purposes"),
		Recipients:  p.list(f["recipients"], path+".recipients"),
		Regions:     p.list(f["regions"], path+".regions"),
		Events:      p.list(f["events"], path+".events"),
		Source:      SourceDevice,
	}
	if !categories[it.Category] && it.Category != "" {
		p.fail(f["category"], path+".category", "unknown category %q", it.Category)
	}
	p.oneOf(f["purposes"], path+".purposes", "purpose", it.Purposes, func(s string) bool { return purposes[s] })
	p.oneOf(f["recipients"], path+".recipients", "recipient", it.Recipients, func(s string) bool { return recipientBit(s) != 0 })
	p.oneOf(f["regions"], path+".regions", "region", it.Regions, func(s string) bool { return regionBit(s) != 0 })
	p.oneOf(f["events"], path+".events", "event type", it.Events, func(s string) bool { return m.eventTypes[s] != nil })
	for i, r := range it.Recipients {
		it.recipientMask |= recipientBit(r)
		if recipientBit(r) != 0 && m.Recipient(r) == nil {
			p.fail(f["recipients"].Content[i], fmt.Sprintf("%s.recipients[%d]", path, i), "recipient %q is not described under recipients", r)
		}
	}
	p.personalDataCheck(f["personal_data_check"], path+".personal_data_check", &it.Type)
	if len(it.Recipients) > 0 && !it.ForRecipient("vendor") {
		p.fail(f["recipients"], path+".recipients", "must include vendor: every item goes to the vendor first")
	}
	for i, r := range it.Regions {
		it.regionMask |= regionBit(r)
		if regionBit(r) != 0 && !slices.Contains(m.Terms.Regions, r) {
			p.fail(f["regions"].Content[i], fmt.Sprintf("%s.regions[%d]", path, i), "region %q is not among the terms' regions", r)
		}
	}
	for _, e := range it.Events {
		if et := m.eventTypes[e]; et != nil {
			it.eventMask |= 1 << et.index
		}
	}

	pf := p.mapping(f["personal"], path+".personal", "level", "reason")
	if p.require(pf, f["personal"], path+".personal", "level") {
		it.Personal = p.str(pf["level"], path+".personal.level")
		switch it.Personal {
		case PersonalNone:
		case PersonalPseudonymous, PersonalPersonal:
			if pf["reason"] == nil {
				p.fail(f["personal"], path+".personal.reason", "missing: say why the item is %s", it.Personal)
			}
		default:
			p.fail(pf["level"], path+".personal.level", "must be none, pseudonymous or personal")
		}
		if pf["reason"] != nil {
			it.PersonalReason = p.text(pf["reason"], path+".personal.reason")
		}
	}

	it.RetentionDays = p.retentionDays(f, path)

	if f["source"] != nil {
		it.Source = p.str(f["source"], path+".source")
		if it.Source != SourceDevice && it.Source != SourceServer {
			p.fail(f["source"], path+".source", "must be device or server")
		}
	}
	if it.Events != nil && slices.Contains(it.Events, BatchEvent) && len(it.Events) > 1 {
		p.fail(f["events"], path+".events", "an item of the batch envelope belongs to no other event type")
	}
	return it
}

var schemePattern = regexp.MustCompile(`^[a-z][a-z0-9+.-]*$`)

// typ parses a type and checks that its bounds are possible.
func (p *parser) typ(n *yaml.Node, path string, inList bool) Type {
	if n == nil {
		return Type{}
	}
	if n.Kind != yaml.MappingNode {
		p.fail(n, path, "must be a mapping with a kind")
		return Type{}
	}
	var kind string
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "kind" {
			kind = n.Content[i+1].Value
		}
	}
	t := Type{Kind: kind}
	switch kind {
	case KindString:
		t.MaxLength = p.sized(n, path, "max_length", 1, maxStringLength)
	case KindInteger:
		f := p.mapping(n, path, "kind", "min", "max")
		if p.require(f, n, path, "min", "max") {
			t.Min, t.Max = p.integer(f["min"], path+".min"), p.integer(f["max"], path+".max")
			if t.Min > t.Max {
				p.fail(f["max"], path+".max", "must not be below min (%d)", t.Min)
			}
			// JSON numbers beyond 2^53 do not survive every decoder intact.
			const safe = 1 << 53
			if t.Min < -safe || t.Max > safe {
				p.fail(n, path, "bounds must lie within ±2^53")
			}
		}
	case KindBoolean, KindTimestamp, KindUUID:
		p.mapping(n, path, "kind")
	case KindEnum:
		f := p.mapping(n, path, "kind", "values")
		if p.require(f, n, path, "values") {
			t.Values = p.list(f["values"], path+".values")
			if len(t.Values) == 0 || len(t.Values) > maxEnumValues {
				p.fail(f["values"], path+".values", "must list between 1 and %d values", maxEnumValues)
			}
			for i, v := range t.Values {
				if v == "" || len(v) > 128 {
					p.fail(f["values"].Content[i], fmt.Sprintf("%s.values[%d]", path, i), "must be 1 to 128 bytes")
				}
			}
		}
	case KindDuration:
		f := p.mapping(n, path, "kind", "min", "max")
		if p.require(f, n, path, "min", "max") {
			t.MinDuration, t.MaxDuration = p.duration(f["min"], path+".min"), p.duration(f["max"], path+".max")
			if t.MinDuration < 0 {
				p.fail(f["min"], path+".min", "must not be negative")
			}
			if t.MinDuration > t.MaxDuration {
				p.fail(f["max"], path+".max", "must not be below min (%s)", t.MinDuration)
			}
		}
	case KindURL:
		f := p.mapping(n, path, "kind", "schemes", "max_length", "origin_only")
		if p.require(f, n, path, "schemes", "max_length") {
			t.Schemes = p.list(f["schemes"], path+".schemes")
			if len(t.Schemes) == 0 {
				p.fail(f["schemes"], path+".schemes", "must name at least one scheme")
			}
			for i, s := range t.Schemes {
				if !schemePattern.MatchString(s) {
					p.fail(f["schemes"].Content[i], fmt.Sprintf("%s.schemes[%d]", path, i), "%q is not a URL scheme", s)
				}
			}
			t.MaxLength = p.bounded(f, path, "max_length", 8, 8192, "")
			t.OriginOnly = p.boolean(f["origin_only"], path+".origin_only")
		}
	case KindDigest:
		f := p.mapping(n, path, "kind", "algorithm", "length")
		if p.require(f, n, path, "algorithm") {
			t.Algorithm = p.str(f["algorithm"], path+".algorithm")
			want, known := digestLengths[t.Algorithm]
			if !known {
				p.fail(f["algorithm"], path+".algorithm", "unknown digest algorithm %q (known: sha1, sha256, sha384, sha512)", t.Algorithm)
			}
			t.Length = want
			if f["length"] != nil {
				if l := int(p.integer(f["length"], path+".length")); known && l != want {
					p.fail(f["length"], path+".length", "a %s digest has %d hex characters, not %d", t.Algorithm, want, l)
				}
			}
		}
	case KindCertificate:
		t.MaxBytes = p.sized(n, path, "max_bytes", 64, maxCertBytes)
	case KindList:
		f := p.mapping(n, path, "kind", "of", "max_items")
		if inList {
			p.fail(n, path, "a list cannot hold lists")
		}
		if p.require(f, n, path, "of", "max_items") {
			of := p.typ(f["of"], path+".of", true)
			t.Of = &of
			t.MaxItems = p.bounded(f, path, "max_items", 1, maxListItems, "")
		}
	case "":
		p.fail(n, path+".kind", "missing")
	default:
		p.fail(n, path+".kind", "unknown kind %q", kind)
	}
	return t
}
