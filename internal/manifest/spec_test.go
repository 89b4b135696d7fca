package manifest_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// specMap holds every sentence of the data-provision terms, identified by a
// fragment, with the manifest items that implement it. A sentence that
// declares no data item says why instead.
var specMap = []struct {
	fragment string
	items    []string
	none     string
}{
	{fragment: "Kaspersky Secure Connection", none: "the product name heading the terms; recorded as terms.product"},
	{fragment: "Data provision under the End User License Agreement on the territory", none: "the title of the terms; recorded as terms.title and terms.regions"},
	{fragment: "This section contains information on the specific data", none: "scope of the section: the manifest's regions are eu, uk, br and us-ca"},
	{fragment: "does not contain any personal data of the User", none: "a statement about personal data: each item's personal level says honestly where data are pseudonymous"},
	{fragment: "You agree to provide the following data for improving the quality", none: "introduces the purposes: protection_quality, software_quality, installation_quality, user_counting"},
	{fragment: "Information about the Rightholder's software: type, version, edition and localization",
		items: []string{"software.type", "software.version", "software.edition", "software.localization", "software.name"}},
	{fragment: "Information about the type, version, and edition of the OS",
		items: []string{"os.type", "os.version", "os.edition", "os.build", "os.architecture", "os.update_packages"}},
	{fragment: "Information about user activity when using the software and issues",
		items: []string{"error.type", "error.code", "ui.control_id", "event.count"}},
	{fragment: "Website address of the software license subscription provider",
		items: []string{"license.provider_site"}},
	{fragment: "Data on the quality of software installation/removal tasks",
		items: []string{"task.type", "task.status", "task.error_type", "task.error_code", "task.duration", "task.campaign_id", "location.country", "location.subdivision"}},
	{fragment: "Information about scanning of secure connections",
		items: []string{"tls.certificate", "tls.spki_sha256", "tls.chain", "event.count"}},
	{fragment: "Certificate of the scanned file, public certificate key of the scanned file",
		items: []string{"file.certificate", "file.spki_sha256", "file.thumbprint_sha1", "file.thumbprint_sha256", "file.signature_status", "event.count"}},
	{fragment: "For keeping track of the number of users, you agree to automatically provide",
		items: []string{"software.name", "software.version", "installation.id", "os.version", "os.update_packages"}},
	{fragment: "Data is transmitted to the Google Analytics service over a secure connection", none: "a transport promise: forwarders use HTTPS with verification on"},
	{fragment: "Access to and protection of information is regulated", none: "refers to Google's terms; no data item"},
	{fragment: "A third-party service provider may process the specified data in countries", none: "a processing-location statement about the third_party recipient"},
	{fragment: "If you do not accept these terms", none: "a condition of use; consent is enforced by the agent"},
	{fragment: "The information received is protected by the Rightholder", none: "a protection statement; no data item"},
	{fragment: "Kaspersky may use the acquired statistical data",
		items: []string{"tls.certificate", "tls.spki_sha256", "file.certificate", "file.thumbprint_sha1"}},
}

// specSentences splits the terms into bullets and sentences.
func specSentences(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("testdata/data-provision.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	boundary := regexp.MustCompile(`([a-z)])\. +([A-Z])`)
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "•"))
		if line == "" {
			continue
		}
		for _, s := range strings.Split(boundary.ReplaceAllString(line, "$1.\n$2"), "\n") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func TestEverySpecSentenceIsMapped(t *testing.T) {
	sentences := specSentences(t)
	if len(sentences) < 15 {
		t.Fatalf("found only %d sentences in the terms", len(sentences))
	}
	used := make([]bool, len(specMap))
	for _, s := range sentences {
		matches := 0
		for i, e := range specMap {
			if strings.Contains(s, e.fragment) {
				matches++
				used[i] = true
			}
		}
		if matches != 1 {
			t.Errorf("sentence matches %d entries of the table, want 1: %q", matches, s)
		}
	}
	for i, e := range specMap {
		if !used[i] {
			t.Errorf("table entry %q matches no sentence of the terms", e.fragment)
		}
		if len(e.items) == 0 && e.none == "" {
			t.Errorf("sentence %q maps to no item and gives no reason", e.fragment)
		}
		for _, id := range e.items {
			if reference.Item(id) == nil {
				t.Errorf("sentence %q maps to %q, which the manifest lacks", e.fragment, id)
			}
		}
	}
}

// Every item must be justified by a sentence of the terms: an item that no
// sentence declares is data the users were not told about.
func TestEveryItemIsDeclaredByTheTerms(t *testing.T) {
	declared := map[string]bool{}
	for _, e := range specMap {
		for _, id := range e.items {
			declared[id] = true
		}
	}
	for _, it := range reference.Items {
		if !declared[it.ID] {
			t.Errorf("item %s is declared by no sentence of the terms", it.ID)
		}
	}
}

// The user-counting sentence names what goes to Google Analytics and the
// third party; the manifest must send exactly that and nothing more.
func TestUserCountingRecipients(t *testing.T) {
	want := map[string]bool{"software.name": true, "software.version": true, "installation.id": true, "os.version": true, "os.update_packages": true}
	for _, r := range []string{"google_analytics", "third_party"} {
		for _, it := range reference.Items {
			if it.ForRecipient(r) != want[it.ID] {
				t.Errorf("%s for %s = %v, want %v", it.ID, r, it.ForRecipient(r), want[it.ID])
			}
		}
	}
}
