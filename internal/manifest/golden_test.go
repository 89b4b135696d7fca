package manifest_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/provisionhq/provision/internal/manifest"
)

var update = flag.Bool("update", false, "rewrite the golden files of the notices")

var goldenExt = map[string]string{"md": "md", "text": "txt", "json": "json", "html": "html"}

// Every region's notice in every format is held in a golden file, so that a
// change to what users are told is seen in review.
func TestNoticeGolden(t *testing.T) {
	for _, region := range reference.Terms.Regions {
		for _, format := range manifest.Formats {
			t.Run(region+"/"+format, func(t *testing.T) {
				var b bytes.Buffer
				if err := reference.WriteDisclosure(&b, format, region); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join("testdata", "golden", region+"."+goldenExt[format])
				if *update {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if !bytes.Equal(b.Bytes(), want) {
					t.Errorf("%s differs from the notice; review and run go test ./internal/manifest -run Golden -update", path)
				}
			})
		}
	}
}

// Each region's notice is complete: it says everything the terms say, in
// every format.
func TestNoticeIsComplete(t *testing.T) {
	for _, region := range reference.Terms.Regions {
		n, err := reference.Notice(region)
		if err != nil {
			t.Fatal(err)
		}
		must := []string{
			n.Controller.Name, n.Controller.Address, n.Region.Law, n.Region.Authority,
			n.Rights.Access.Description, n.Rights.Erasure.Description, n.Rights.Objection.Description, n.Rights.WithdrawConsent.Description,
			"consent withdraw", "POST /v1/deletion",
			"Access to and protection of information is regulated by the relevant terms of use of the Google Analytics service",
			"Data is transmitted to the Google Analytics service over a secure connection.",
			"may be lower",
			"Kaspersky may use the acquired statistical data",
		}
		for _, p := range n.Purposes {
			must = append(must, p.Quote, n.Region.Bases[p.LegalBasis])
			if n.Region.Bases[p.LegalBasis] == "" {
				t.Errorf("%s: purpose %s has no legal basis under %s", region, p.ID, n.Region.Law)
			}
		}
		for _, r := range n.Recipients {
			must = append(must, r.ProcessingCountries, r.Safeguards, r.Retention, r.Terms)
		}
		for _, it := range reference.Items {
			must = append(must, it.ID)
			must = append(must, it.Quotes...)
		}
		if region == "us-ca" {
			must = append(must, "does not sell personal information")
		}
		for _, format := range []string{"md", "text", "html"} {
			var b strings.Builder
			if err := reference.WriteDisclosure(&b, format, region); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if format == "html" {
				out = strings.NewReplacer("&#39;", "'", "&#34;", `"`, "&amp;", "&", "<code>", "", "</code>", "").Replace(out)
			} else if format == "md" {
				out = strings.ReplaceAll(out, "`", "")
			}
			for _, s := range must {
				if !strings.Contains(out, s) {
					t.Errorf("%s %s notice lacks %q", region, format, s)
				}
			}
			if region != "us-ca" && strings.Contains(out, "does not sell personal information") {
				t.Errorf("%s %s notice carries California's statement", region, format)
			}
		}
	}
}

func TestNoticeJSON(t *testing.T) {
	var b bytes.Buffer
	if err := reference.WriteDisclosure(&b, "json", "eu"); err != nil {
		t.Fatal(err)
	}
	var n struct {
		Region     map[string]any   `json:"region"`
		Controller map[string]any   `json:"controller"`
		Purposes   []map[string]any `json:"purposes"`
		Recipients []map[string]any `json:"recipients"`
		Items      []map[string]any `json:"items"`
		Rights     map[string]any   `json:"rights"`
	}
	if err := json.Unmarshal(b.Bytes(), &n); err != nil {
		t.Fatal(err)
	}
	if n.Region["id"] != "eu" || n.Controller["contact"] == "" || len(n.Rights) != 4 {
		t.Errorf("notice: %+v", n)
	}
	for _, key := range []string{"id", "quotes", "category", "type", "purposes", "recipients", "regions", "personal", "retention_days"} {
		if _, ok := n.Items[0][key]; !ok {
			t.Errorf("json notice item lacks %q", key)
		}
	}
	for _, key := range []string{"legal_basis", "legal_basis_text", "quote"} {
		if _, ok := n.Purposes[0][key]; !ok {
			t.Errorf("json notice purpose lacks %q", key)
		}
	}
	for _, key := range []string{"processing_countries", "lower_protection", "safeguards", "retention", "terms"} {
		if _, ok := n.Recipients[0][key]; !ok {
			t.Errorf("json notice recipient lacks %q", key)
		}
	}
	if err := reference.WriteDisclosure(&b, "pdf", "eu"); err == nil {
		t.Error("unknown format accepted")
	}
	if err := reference.WriteDisclosure(&b, "md", "xx"); err == nil {
		t.Error("unknown region accepted")
	}
}

// The README's validation table and the API's rejection codes name every
// code the validator can give.
func TestCodesAreDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	api, err := os.ReadFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range manifest.Codes {
		if !bytes.Contains(readme, []byte("| `"+string(c)+"` |")) {
			t.Errorf("README's validation table lacks %s", c)
		}
		if c != manifest.CodeRecipientNotDeclared && !bytes.Contains(api, []byte(string(c))) {
			t.Errorf("api/openapi.yaml's rejection codes lack %s", c)
		}
	}
}
