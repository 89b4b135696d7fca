package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"

	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/agent/internal/outbox"
	"github.com/provisionhq/provision/agent/internal/sysinfo"
)

// OSInfo is what the agent sends about the operating system: the terms
// name its "type, version, and edition" and its "installed update
// packages", and nothing else (no build number, no architecture).
type OSInfo struct {
	Type           string   `json:"type"`
	Version        string   `json:"version"`
	Edition        string   `json:"edition"`
	UpdatePackages []string `json:"update_packages"`
}

func readSystem(ctx context.Context) (OSInfo, error) {
	o, err := sysinfo.Collect(ctx)
	return OSInfo{Type: o.Type, Version: o.Version, Edition: o.Edition, UpdatePackages: o.UpdatePackages}, err
}

// readOS returns the operating system, read once per agent.
func (a *Agent) readOS(ctx context.Context) (OSInfo, error) {
	a.mu.Lock()
	cached := a.osInfo
	a.mu.Unlock()
	if cached != nil {
		return *cached, nil
	}
	return a.refreshOS(ctx)
}

func (a *Agent) refreshOS(ctx context.Context) (OSInfo, error) {
	read := a.cfg.ReadOS
	if read == nil {
		read = readSystem
	}
	o, err := read(ctx)
	if err != nil {
		return OSInfo{}, fmt.Errorf("agent: reading the operating system: %w", err)
	}
	a.mu.Lock()
	a.osInfo = &o
	a.mu.Unlock()
	return o, nil
}

// daily is one of the events sent when it changes and once a day.
type daily struct {
	ev     *provision.Event
	digest []byte
}

// Skipped is a collector that produced nothing, and why.
type Skipped struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

// dailyEvents runs the collectors of the daily event types: software,
// operating system, licence and the user-count record.
func (a *Agent) dailyEvents(ctx context.Context, c Consent) ([]daily, []Skipped) {
	var out []daily
	var skipped []Skipped
	now := a.now()
	day := now.UTC().Format("2006-01-02")
	add := func(typ string, fields map[string]any) {
		ev, err := a.build(typ, fields, c.Region, now)
		if err != nil {
			skipped = append(skipped, Skipped{typ, err.Error()})
			return
		}
		// The digest covers the day and the values, so an event goes out
		// when its values change and once a day.
		body, _ := json.Marshal(ev.Fields)
		sum := sha256.Sum256(append([]byte(day+"\n"), body...))
		out = append(out, daily{ev, sum[:]})
	}
	sw := a.currentSoftware()
	if sw.Name == "" || sw.Version == "" {
		skipped = append(skipped, Skipped{"software", "the host application has not said its name and version"})
	} else {
		add("software", map[string]any{
			"software.type": sw.Type, "software.name": sw.Name, "software.version": sw.Version,
			"software.edition": sw.Edition, "software.localization": sw.Localization,
		})
	}
	osi, err := a.refreshOS(ctx)
	if err != nil {
		skipped = append(skipped, Skipped{"os", err.Error()})
	} else {
		fields := map[string]any{"os.type": osi.Type, "os.version": osi.Version, "os.edition": osi.Edition}
		if len(osi.UpdatePackages) > 0 {
			fields["os.update_packages"] = osi.UpdatePackages
		}
		add("os", fields)
	}
	a.mu.Lock()
	license := a.license
	a.mu.Unlock()
	if license == "" {
		skipped = append(skipped, Skipped{"license", "no licence provider site is known"})
	} else {
		add("license", map[string]any{"license.provider_site": license})
	}
	if sw.Name != "" && sw.Version != "" && err == nil {
		// The user-count record carries the items the manifest lets go to
		// the analytics recipients; the installation id travels in the
		// batch envelope.
		known := map[string]any{"software.name": sw.Name, "software.version": sw.Version, "os.version": osi.Version}
		if len(osi.UpdatePackages) > 0 {
			known["os.update_packages"] = osi.UpdatePackages
		}
		fields := map[string]any{}
		for _, r := range []string{provision.RecipientGoogleAnalytics, provision.RecipientThirdParty} {
			for _, it := range a.m.ItemsFor("user_count", r, c.Region) {
				if v, ok := known[it.ID]; ok {
					fields[it.ID] = v
				}
			}
		}
		add("user_count", fields)
	} else {
		skipped = append(skipped, Skipped{"user_count", "needs the application's name and version and the operating system version"})
	}
	return out, skipped
}

// CollectReport says what a collection queued.
type CollectReport struct {
	Queued    []string  `json:"queued"`    // event types queued
	Unchanged []string  `json:"unchanged"` // already queued today with the same values
	Skipped   []Skipped `json:"skipped"`
}

// Collect runs the daily collectors and queues what changed since the last
// collection, and everything once a day.
func (a *Agent) Collect(ctx context.Context) (CollectReport, error) {
	c, err := a.consented()
	if err != nil {
		return CollectReport{}, err
	}
	events, skipped := a.dailyEvents(ctx, c)
	rep := CollectReport{Skipped: skipped}
	for _, d := range events {
		added, err := a.store.AddIfChanged(d.ev, c.Region, d.ev.Type, d.digest)
		if err != nil {
			return rep, err
		}
		if added {
			rep.Queued = append(rep.Queued, d.ev.Type)
		} else {
			rep.Unchanged = append(rep.Unchanged, d.ev.Type)
		}
	}
	return rep, nil
}

// Preview is what an upload would send now.
type Preview struct {
	Consent   Consent           `json:"consent"`
	Deletions []DeletionRequest `json:"deletion_requests"`
	Batches   []provision.Batch `json:"batches"`
	Skipped   []Skipped         `json:"skipped,omitempty"`
}

// DeletionRequest is a request to erase an installation's data.
type DeletionRequest struct {
	InstallationID string `json:"installation_id"`
	RequestID      string `json:"request_id"`
}

// DryRun returns exactly what a collection followed by an upload would send
// now — the deletion requests, the batch in flight as it is, then the
// waiting events and the daily events that would be queued, in batches as
// the uploader cuts them — and changes nothing. Batches not yet in flight
// get their id and sent_at when they are sent.
func (a *Agent) DryRun(ctx context.Context, up Upload) (Preview, error) {
	up = up.withDefaults()
	c, err := a.Consent()
	if err != nil {
		return Preview{}, err
	}
	p := Preview{Consent: c, Deletions: []DeletionRequest{}, Batches: []provision.Batch{}}
	dels, err := a.store.Deletions()
	if err != nil {
		return p, err
	}
	for _, d := range dels {
		p.Deletions = append(p.Deletions, DeletionRequest{d.InstallationID, d.RequestID})
	}
	if !c.Accepted {
		return p, nil
	}
	in, err := a.store.GetInflight()
	if err != nil {
		return p, err
	}
	skip := map[uint64]bool{}
	if in != nil {
		var b provision.Batch
		dec := json.NewDecoder(bytes.NewReader(in.Body))
		dec.UseNumber()
		if err := dec.Decode(&b); err != nil {
			return p, fmt.Errorf("agent: batch in flight unreadable: %w", err)
		}
		p.Batches = append(p.Batches, b)
		for _, s := range in.Seqs {
			skip[s] = true
		}
	}
	pending, err := a.store.Pending(math.MaxInt, math.MaxInt)
	if err != nil {
		return p, err
	}
	var waiting []outbox.Entry
	for _, e := range pending {
		if !skip[e.Seq] {
			waiting = append(waiting, e)
		}
	}
	daily, skipped := a.dailyEvents(ctx, c)
	p.Skipped = skipped
	for _, d := range daily {
		last, err := a.store.LastSeen(d.ev.Type)
		if err != nil {
			return p, err
		}
		if !bytes.Equal(last, d.digest) {
			body, _ := json.Marshal(d.ev)
			waiting = append(waiting, outbox.Entry{Region: c.Region, Event: *d.ev, Size: len(body)})
		}
	}
	// Cut as StartBatch does: the oldest event and the oldest others of
	// its region, within the bounds.
	for len(waiting) > 0 {
		region := waiting[0].Region
		var batch []provision.Event
		var rest []outbox.Entry
		total, full := 0, false
		for _, e := range waiting {
			switch {
			case full || e.Region != region:
				rest = append(rest, e)
			case len(batch) > 0 && (len(batch) >= up.MaxBatchEvents || total+e.Size > up.MaxBatchBytes):
				full = true
				rest = append(rest, e)
			default:
				total += e.Size
				batch = append(batch, e.Event)
			}
		}
		p.Batches = append(p.Batches, a.newBatch(c, recordedUnder(c, region), batch))
		waiting = rest
	}
	return p, nil
}
