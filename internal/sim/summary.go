package sim

import (
	"fmt"
	"io"
	"sort"
)

// Summary is the ground truth in a form to print or save as JSON.
type Summary struct {
	Start            string         `json:"start"`
	Days             int            `json:"days"`
	Installations    int            `json:"installations"`
	EventsGenerated  int            `json:"events_generated"`
	Sent             Counters       `json:"sent"`
	DailyActive      []DailyActive  `json:"daily_active"`
	InterceptionRoot PlantedCert    `json:"interception_root"`
	EnterpriseRoots  []PlantedCert  `json:"enterprise_roots"`
	StolenSigner     PlantedCert    `json:"stolen_signer"`
	Expired          PlantedCert    `json:"expired_certificate"`
	Campaigns        map[string]any `json:"campaigns"`
}

// DailyActive is one day's count of distinct active installations.
type DailyActive struct {
	Date        string `json:"date"`
	Active      int    `json:"active"`
	Intercepted int    `json:"intercepted"`
	Stolen      int    `json:"stolen_signer"`
}

// PlantedCert names a planted certificate the way reports show it.
type PlantedCert struct {
	Name       string `json:"name"`
	SPKISHA256 string `json:"spki_sha256"`
	SHA1       string `json:"thumbprint_sha1"`
}

func planted(c *Cert) PlantedCert {
	return PlantedCert{Name: c.Name, SPKISHA256: c.SPKISHA256, SHA1: c.SHA1}
}

// Summary returns the ground truth recorded so far.
func (t *Truth) Summary() Summary {
	t.mu.Lock()
	sent := t.Sent
	sent.RejectionCodes = make(map[string]int, len(t.Sent.RejectionCodes))
	for k, v := range t.Sent.RejectionCodes {
		sent.RejectionCodes[k] = v
	}
	t.mu.Unlock()
	s := Summary{
		Start: t.Start.Format("2006-01-02"), Days: len(t.Days), Installations: t.Installations,
		EventsGenerated: t.EventsGenerated(), Sent: sent,
		InterceptionRoot: planted(t.InterceptionRoot), StolenSigner: planted(t.StolenSigner),
		Expired: planted(t.ExpiredCertificate), Campaigns: map[string]any{},
	}
	for _, r := range t.EnterpriseRoots {
		s.EnterpriseRoots = append(s.EnterpriseRoots, planted(r))
	}
	for _, d := range t.Days {
		s.DailyActive = append(s.DailyActive, DailyActive{Date: d.Date, Active: d.Active, Intercepted: d.Intercepted, Stolen: d.StolenSigner})
	}
	seen := map[string]bool{}
	for _, cp := range campaigns {
		if seen[cp.ID] {
			continue
		}
		seen[cp.ID] = true
		c := t.CampaignTotals(cp.ID)
		s.Campaigns[cp.ID] = map[string]int{"attempts": c.Attempts, "failures": c.Failures}
	}
	return s
}

// Print writes a short human-readable account of the summary.
func (s Summary) Print(w io.Writer) {
	fmt.Fprintf(w, "Simulated %d installations over %d days from %s: %d events generated.\n", s.Installations, s.Days, s.Start, s.EventsGenerated)
	fmt.Fprintf(w, "Server confirmed %d batches: %d events accepted, %d rejected; %d batches refused (%d events); %d retries.\n",
		s.Sent.Batches, s.Sent.Accepted, s.Sent.Rejected, s.Sent.DroppedBatches, s.Sent.DroppedEvents, s.Sent.Retries)
	if len(s.Sent.RejectionCodes) > 0 {
		codes := make([]string, 0, len(s.Sent.RejectionCodes))
		for c := range s.Sent.RejectionCodes {
			codes = append(codes, c)
		}
		sort.Strings(codes)
		for _, c := range codes {
			fmt.Fprintf(w, "  rejected %-24s %d\n", c, s.Sent.RejectionCodes[c])
		}
	}
	fmt.Fprintf(w, "Planted: interception root %q (SPKI %s…), stolen signer %q (SHA-1 %s…), failing campaign %s.\n",
		s.InterceptionRoot.Name, s.InterceptionRoot.SPKISHA256[:16], s.StolenSigner.Name, s.StolenSigner.SHA1[:16], FailingCampaign)
}
