package manifest_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/provisionhq/provision/internal/manifest"
)

func TestReferenceManifestLoads(t *testing.T) {
	m, err := manifest.Parse("reference.yaml", manifest.ReferenceYAML())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Items) < 25 {
		t.Errorf("reference manifest has %d items, want every item of the terms", len(m.Items))
	}
	for _, it := range m.Items {
		if it.Type.Kind == "" {
			t.Errorf("%s has no type", it.ID)
		}
	}
}

func TestLoadFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(path, manifest.ReferenceYAML(), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.File() != path {
		t.Errorf("File() = %q, want %q", m.File(), path)
	}
	if _, err := manifest.Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Error("missing file loaded")
	}
}

// mutate replaces the first occurrence of old in the reference manifest.
func mutate(t *testing.T, old, new string) []byte {
	t.Helper()
	s := string(manifest.ReferenceYAML())
	if !strings.Contains(s, old) {
		t.Fatalf("reference manifest lacks %q", old)
	}
	return []byte(strings.Replace(s, old, new, 1))
}

func lineOf(t *testing.T, data []byte, needle string) int {
	t.Helper()
	i := strings.Index(string(data), needle)
	if i < 0 {
		t.Fatalf("%q not in manifest", needle)
	}
	return strings.Count(string(data[:i]), "\n") + 1
}

func TestInvalidManifests(t *testing.T) {
	tests := []struct {
		name    string
		old     string
		new     string
		line    string // text on the line the error must name
		message string
	}{
		{"unknown key", "    retention_days: 395\n    events: [software]\n", "    retention_days: 395\n    colour: red\n    events: [software]\n",
			"colour: red", "items[0].colour: unknown key"},
		{"unknown top-level key", "version: \"2026.11.1\"", "version: \"2026.11.1\"\nextras: 1", "extras: 1", "extras: unknown key"},
		{"duplicate id", "  - id: software.name\n", "  - id: software.type\n", "", "duplicate item id \"software.type\""},
		{"missing description", "    description: The product name of the application.\n", "", "", "items[1].description: missing"},
		{"empty description", "    description: The product name of the application.\n", "    description: \"  \"\n", "description: \"  \"", "items[1].description: must not be empty"},
		{"impossible integer bounds", "{kind: integer, min: 1, max: 1000000000}", "{kind: integer, min: 10, max: 1}", "{kind: integer, min: 10, max: 1}", "items[12].type.max: must not be below min (10)"},
		{"zero string length", "{kind: string, max_length: 64}\n    category: software", "{kind: string, max_length: 0}\n    category: software", "max_length: 0", "items[1].type.max_length: must be between 1"},
		{"digest length mismatch", "{kind: digest, algorithm: sha1}", "{kind: digest, algorithm: sha1, length: 64}", "algorithm: sha1, length: 64", "a sha1 digest has 40 hex characters, not 64"},
		{"unknown digest algorithm", "{kind: digest, algorithm: sha1}", "{kind: digest, algorithm: md5}", "algorithm: md5", "unknown digest algorithm \"md5\""},
		{"unknown kind", "{kind: uuid}", "{kind: guid}", "{kind: guid}", "unknown kind \"guid\""},
		{"duration min above max", "{kind: duration, min: 0s, max: 48h}", "{kind: duration, min: 49h, max: 48h}", "min: 49h", "must not be below min"},
		{"list of lists", "{kind: list, of: {kind: string, max_length: 128}, max_items: 2000}", "{kind: list, of: {kind: list, of: {kind: boolean}, max_items: 2}, max_items: 2000}", "kind: list, of: {kind: list", "a list cannot hold lists"},
		{"unknown recipient", "    recipients: [vendor, google_analytics, third_party]\n", "    recipients: [vendor, facebook]\n", "recipients: [vendor, facebook]", "unknown recipient \"facebook\""},
		{"unknown region", "    regions: [eu, uk, br, us-ca]\n    personal: {level: none}\n    retention_days: 395\n    events: [software]\n", "    regions: [eu, mars]\n    personal: {level: none}\n    retention_days: 395\n    events: [software]\n", "regions: [eu, mars]", "unknown region \"mars\""},
		{"unknown purpose", "    purposes: [software_quality, protection_quality]\n", "    purposes: [advertising]\n", "purposes: [advertising]", "unknown purpose \"advertising\""},
		{"unknown event type", "    events: [software]\n", "    events: [keystrokes]\n", "events: [keystrokes]", "unknown event type \"keystrokes\""},
		{"unknown category", "    category: software\n", "    category: hardware\n", "category: hardware", "unknown category \"hardware\""},
		{"personal without reason", "    personal:\n      level: pseudonymous\n      reason: A site's", "    personal:\n      level: pseudonymous\n      other: A site's", "other: A site's", "unknown key"},
		{"bad personal level", "    personal: {level: none}\n    retention_days: 395\n    events: [software]\n", "    personal: {level: maybe}\n    retention_days: 395\n    events: [software]\n", "level: maybe", "must be none, pseudonymous or personal"},
		{"retention out of range", "    retention_days: 395\n    events: [software]\n", "    retention_days: 0\n    events: [software]\n", "retention_days: 0", "must be between 1 and 3650"},
		{"vendor missing", "    recipients: [vendor, google_analytics, third_party]\n", "    recipients: [google_analytics]\n", "recipients: [google_analytics]", "must include vendor"},
		{"required item unknown", "required: [software.type, software.name, software.version]", "required: [software.type, software.colour]", "required: [software.type, software.colour]", "unknown item \"software.colour\""},
		{"repeated key", "    category: software\n    purposes: [software_quality, protection_quality]\n", "    category: software\n    category: software\n    purposes: [software_quality, protection_quality]\n", "", "repeated key"},
		{"bad url scheme", "schemes: [https, http]", "schemes: [\"HTTP S\"]", "schemes: [\"HTTP S\"]", "is not a URL scheme"},
		{"empty enum", "values: [install, remove, upgrade, update]", "values: []", "values: []", "must list between 1 and"},
		{"item without quotes", "    quotes:\n      - \"the name and version of the installed software of the Rightholder\"\n", "", "", "items[1].quotes: missing"},
		{"empty quotes", "    quotes:\n      - \"the name and version of the installed software of the Rightholder\"\n", "    quotes: []\n", "quotes: []", "items[1].quotes: must quote at least one span"},
		{"check on a digest", "    type: {kind: digest, algorithm: sha1}\n", "    personal_data_check: on\n    type: {kind: digest, algorithm: sha1}\n", "personal_data_check: on", "a digest has a fixed form"},
		{"unknown check", "    personal_data_check: [email, user_path]\n", "    personal_data_check: [email, shoe_size]\n", "personal_data_check: [email, shoe_size]", "unknown check \"shoe_size\""},
		{"bad check value", "    personal_data_check: off\n", "    personal_data_check: maybe\n", "personal_data_check: maybe", "must be on, off or a list"},
		{"purpose without legal basis", "    quote: \"accounting for the number of users\"\n    legal_basis: consent\n", "    quote: \"accounting for the number of users\"\n", "", "purposes[3].legal_basis: missing"},
		{"unknown legal basis", "    quote: \"accounting for the number of users\"\n    legal_basis: consent\n", "    quote: \"accounting for the number of users\"\n    legal_basis: vibes\n", "legal_basis: vibes", "unknown legal basis \"vibes\""},
		{"purpose without quote", "    quote: \"accounting for the number of users\"\n", "", "", "purposes[3].quote: missing"},
		{"controller without contact", "  contact: Write to the address above", "  phone: Write to the address above", "phone: Write", "controller.phone: unknown key"},
		{"recipient without retention", "    retention_days: 62\n", "", "", "recipients[1].retention_days: missing"},
		{"recipient without processing countries", "    processing_countries: Countries where the level", "    where: Countries where the level", "where: Countries", "recipients[2].where: unknown key"},
		{"recipient described twice", "  - id: third_party\n    description: a third-party", "  - id: google_analytics\n    description: a third-party", "id: google_analytics\n    description: a third-party", "described twice"},
		{"undescribed recipient", "  - id: third_party\n    description: a third-party", "  - id: vendor\n    description: a third-party", "", "recipient \"third_party\" is not described under recipients"},
		{"region without notice", "  - id: br\n    name: Brazil\n", "  - id: eu\n    name: Brazil\n", "", "region \"br\" of the terms has no notice"},
		{"notice without basis", "      consent: \"your consent, given by accepting these terms (Article 7, I, LGPD)\"\n", "      contract: \"x\"\n", "", "region_notices[2].bases.consent: missing"},
		{"california without statement", "    statement: The vendor does not sell", "    authority2: The vendor does not sell", "authority2: The", "unknown key"},
		{"rights without objection", "  objection:\n", "  objecting:\n", "objecting:", "rights.objecting: unknown key"},
		{"reserved event type", "  - id: license\n    description: The website", "  - id: batch\n    description: The website", "id: batch", "reserved"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := mutate(t, tt.old, tt.new)
			_, err := manifest.Parse("custom.yaml", data)
			if err == nil {
				t.Fatal("invalid manifest accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.message) {
				t.Errorf("error %q does not say %q", msg, tt.message)
			}
			if !strings.HasPrefix(msg, "custom.yaml:") {
				t.Errorf("error %q does not name the file", msg)
			}
			if tt.line != "" {
				want := "custom.yaml:" + strconv.Itoa(lineOf(t, data, tt.line)) + ":"
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not name line %s", msg, want)
				}
			}
		})
	}
}

func TestNotYAML(t *testing.T) {
	for _, data := range []string{"", "[1, 2", "just text", "- a\n- b\n"} {
		if _, err := manifest.Parse("x.yaml", []byte(data)); err == nil {
			t.Errorf("%q accepted as a manifest", data)
		}
	}
}
