package manifest_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// termsText is the data-provision terms the reference manifest implements,
// a copy of ../shared/spec/data-provision.txt.
func termsText(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("testdata/data-provision.txt")
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// enumerated is every thing the terms enumerate as data to be provided,
// each with the phrase that names it in the text and the items that
// implement it. Each item must quote a span that holds the phrase, and no
// item may exist that implements no phrase: what the terms do not name is
// not collected.
var enumerated = []struct {
	phrase string
	items  []string
}{
	// "Information about the Rightholder's software: type, version, edition and localization of the installed software."
	{"software: type", []string{"software.type"}},
	{"type, version, edition and localization of the installed software", []string{"software.version"}},
	{"edition and localization of the installed software", []string{"software.edition"}},
	{"localization of the installed software", []string{"software.localization"}},
	// "Information about the type, version, and edition of the OS installed on the computer, and about installed update packages for the OS."
	{"the type, version, and edition of the OS", []string{"os.type"}},
	{"version, and edition of the OS", []string{"os.version"}},
	{"edition of the OS", []string{"os.edition"}},
	{"about installed update packages for the OS", []string{"os.update_packages"}},
	// "Information about user activity ...: types and codes of errors and issues ..., and the ID of the user interface control element."
	{"types and codes of errors and issues", []string{"error.type", "error.code"}},
	{"issues that arise during that activity", []string{"event.count"}},
	{"the ID of the user interface control element", []string{"ui.control_id"}},
	{"Website address of the software license subscription provider", []string{"license.provider_site"}},
	// "Data on the quality of software installation/removal tasks: ..."
	{"type of installation task", []string{"task.type"}},
	{"task completion status", []string{"task.status"}},
	{"type and code of the error during task performance", []string{"task.error_type", "task.error_code"}},
	{"time spent on completing the task", []string{"task.duration"}},
	{"the ID of the software version upgrade campaign", []string{"task.campaign_id"}},
	{"the geographic location of the user's computer", []string{"location.country", "location.subdivision"}},
	// "Information about scanning of secure connections: the certificate used to establish the connection and the checksum (SHA2-256) of its public key."
	{"Information about scanning of secure connections", []string{"event.count"}},
	{"the certificate used to establish the connection", []string{"tls.certificate"}},
	{"the checksum (SHA2-256) of its public key", []string{"tls.spki_sha256"}},
	// "Certificate of the scanned file, public certificate key of the scanned file, and the thumbprint of the certificate of the scanned file."
	{"Certificate of the scanned file", []string{"file.certificate", "event.count"}},
	{"public certificate key of the scanned file", []string{"file.spki_sha256"}},
	{"the thumbprint of the certificate of the scanned file", []string{"file.thumbprint_sha1"}},
	// "For keeping track of the number of users, ...: the name and version of the installed software of the Rightholder, the unique ID of the software installation on the computer, and information about the versions of the operating system installed on the computer and the installed update packages."
	{"the name and version of the installed software", []string{"software.name", "software.version"}},
	{"the unique ID of the software installation on the computer", []string{"installation.id"}},
	{"the versions of the operating system installed on the computer", []string{"os.version"}},
	{"the installed update packages", []string{"os.update_packages"}},
}

func TestEveryQuoteIsInTheTerms(t *testing.T) {
	text := termsText(t)
	for _, it := range reference.Items {
		if len(it.Quotes) == 0 {
			t.Errorf("%s quotes nothing", it.ID)
		}
		for _, q := range it.Quotes {
			if !strings.Contains(text, q) {
				t.Errorf("%s quotes %q, which the terms do not say", it.ID, q)
			}
		}
	}
	for _, p := range reference.Purposes {
		if !strings.Contains(text, p.Quote) {
			t.Errorf("purpose %s quotes %q, which the terms do not say", p.ID, p.Quote)
		}
	}
	for _, r := range reference.Recipients {
		for _, q := range r.Quotes {
			if !strings.Contains(text, q) {
				t.Errorf("recipient %s quotes %q, which the terms do not say", r.ID, q)
			}
		}
	}
}

func TestEveryEnumeratedThingHasAnItem(t *testing.T) {
	text := termsText(t)
	for _, e := range enumerated {
		if !strings.Contains(text, e.phrase) {
			t.Errorf("the terms do not say %q", e.phrase)
		}
		for _, id := range e.items {
			it := reference.Item(id)
			if it == nil {
				t.Errorf("%q: the manifest lacks %s", e.phrase, id)
				continue
			}
			if !slices.ContainsFunc(it.Quotes, func(q string) bool { return strings.Contains(q, e.phrase) }) {
				t.Errorf("%q: %s quotes no span holding it (quotes: %q)", e.phrase, id, it.Quotes)
			}
		}
	}
}

// Every item must implement a thing the terms enumerate: an item that no
// phrase names is data the users were not told about.
func TestEveryItemIsNamedByTheTerms(t *testing.T) {
	named := map[string]bool{}
	for _, e := range enumerated {
		for _, id := range e.items {
			named[id] = true
		}
	}
	for _, it := range reference.Items {
		if !named[it.ID] {
			t.Errorf("item %s implements nothing the terms enumerate", it.ID)
		}
	}
}

// What the issue found collected beyond the text stays out.
func TestNothingBeyondTheText(t *testing.T) {
	for _, id := range []string{"tls.chain", "file.signature_status", "file.thumbprint_sha256", "os.build", "os.architecture"} {
		if reference.Item(id) != nil {
			t.Errorf("%s is declared, but the terms do not name it", id)
		}
	}
	// "information about the geographic location of the user's computer"
	// is in the installation/removal task bullet, and only there.
	for _, id := range []string{"location.country", "location.subdivision"} {
		if got := reference.Item(id).Events; !slices.Equal(got, []string{"task"}) {
			t.Errorf("%s is declared for %v, want task events only", id, got)
		}
	}
}

// Every sentence of the terms is implemented somewhere: by items (above),
// or by a part of the notice that says it. The table names where.
var sentenceMap = []struct {
	fragment string
	where    string
}{
	{"Kaspersky Secure Connection", "terms.product"},
	{"Data provision under the End User License Agreement on the territory", "terms.title and terms.regions; one region notice each"},
	{"This section contains information on the specific data", "recipients.vendor.quotes"},
	{"does not contain any personal data of the User", "items' personal levels; the notice's opening"},
	{"You agree to provide the following data for improving the quality", "purposes[].quote and legal_basis: consent"},
	{"Information about the Rightholder's software", "items"},
	{"Information about the type, version, and edition of the OS", "items"},
	{"Information about user activity when using the software and issues", "items"},
	{"Website address of the software license subscription provider", "items"},
	{"Data on the quality of software installation/removal tasks", "items"},
	{"Information about scanning of secure connections", "items"},
	{"Certificate of the scanned file, public certificate key of the scanned file", "items"},
	{"For keeping track of the number of users, you agree to automatically provide", "items, recipients google_analytics and third_party"},
	{"Data is transmitted to the Google Analytics service over a secure connection", "recipients.google_analytics.quotes and safeguards"},
	{"Access to and protection of information is regulated", "recipients.google_analytics.terms"},
	{"A third-party service provider may process the specified data in countries", "recipients.third_party.processing_countries and lower_protection"},
	{"If you do not accept these terms", "recipients.third_party.safeguards; rights.objection"},
	{"The information received is protected by the Rightholder", "recipients.vendor.quotes and safeguards"},
	{"Kaspersky may use the acquired statistical data", "purposes.threat_reports.quote and publication"},
}

// specSentences splits the terms into bullets and sentences.
func specSentences(t *testing.T) []string {
	t.Helper()
	var out []string
	boundary := regexp.MustCompile(`([a-z)])\. +([A-Z])`)
	for _, line := range strings.Split(termsText(t), "\n") {
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
	used := make([]bool, len(sentenceMap))
	for _, s := range sentences {
		matches := 0
		for i, e := range sentenceMap {
			if strings.Contains(s, e.fragment) {
				matches++
				used[i] = true
			}
		}
		if matches != 1 {
			t.Errorf("sentence matches %d entries of the table, want 1: %q", matches, s)
		}
	}
	for i, e := range sentenceMap {
		if !used[i] {
			t.Errorf("table entry %q matches no sentence of the terms", e.fragment)
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

// The terms' statements about recipients reach the notice as the manifest
// declares them.
func TestRecipientStatements(t *testing.T) {
	tp := reference.Recipient("third_party")
	if tp == nil || !tp.LowerProtection {
		t.Error("the third party may process in countries with lower protection; the manifest must say so")
	}
	ga := reference.Recipient("google_analytics")
	if ga == nil || !strings.Contains(ga.Terms, "relevant terms of use of the Google Analytics service") {
		t.Error("Google Analytics' own terms govern access and protection there; the manifest must say so")
	}
	if ga != nil && !slices.Contains(ga.Quotes, "Data is transmitted to the Google Analytics service over a secure connection.") {
		t.Error("the secure connection to Google Analytics is not quoted")
	}
}
