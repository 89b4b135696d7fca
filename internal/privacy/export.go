package privacy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"
)

// Export is everything held for one installation, in the form handed to
// the person it concerns: each value under the manifest item it belongs to,
// with the item's description, category and retention.
type Export struct {
	ManifestVersion string    `json:"manifest_version"`
	ExportedAt      time.Time `json:"exported_at"`
	InstallationID  string    `json:"installation_id"`
	// Erased is true when an erasure was requested for the installation;
	// nothing else is then held, and Items is empty.
	Erased bool `json:"erased"`
	// Submissions lists each batch that brought events, with the region
	// profile under whose terms it was accepted.
	Submissions []Submission `json:"submissions"`
	Items       []ExportItem `json:"items"`
	// Other lists rows other than events that name the installation, such
	// as the record that its daily count was forwarded.
	Other []LinkedRecord `json:"other_records"`
}

// Submission is one batch as export shows it.
type Submission struct {
	BatchID    string    `json:"batch_id"`
	Region     string    `json:"region"`
	ReceivedAt time.Time `json:"received_at"`
}

// ExportItem groups the values of one manifest item.
type ExportItem struct {
	ID            string        `json:"id"`
	Description   string        `json:"description"`
	Category      string        `json:"category"`
	RetentionDays int           `json:"retention_days"`
	Values        []ExportValue `json:"values"`
}

// ExportValue is one stored value and the event that carried it.
type ExportValue struct {
	EventID   string    `json:"event_id"`
	EventType string    `json:"event_type"`
	Time      time.Time `json:"time"`
	Value     any       `json:"value"`
}

// undeclaredItem groups values whose item the current manifest no longer
// declares (data accepted under an earlier manifest).
const undeclaredItem = "undeclared"

// Export collects everything held for the installation.
func (s *Service) Export(ctx context.Context, installationID string) (*Export, error) {
	if err := s.CheckInstallationID(installationID); err != nil {
		return nil, err
	}
	x := &Export{
		ManifestVersion: s.m.Version,
		ExportedAt:      s.now().UTC(),
		InstallationID:  installationID,
		Submissions:     []Submission{},
		Items:           []ExportItem{},
		Other:           []LinkedRecord{},
	}
	erased, err := s.Erased(ctx, installationID)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	x.Erased = erased
	values := map[string][]ExportValue{}
	seenBatch := map[string]bool{}
	var after int64
	for {
		recs, err := s.store.InstallationEvents(ctx, installationID, after, 1000)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		for i := range recs {
			r := &recs[i]
			after = r.Seq
			if !seenBatch[r.BatchID] {
				seenBatch[r.BatchID] = true
				x.Submissions = append(x.Submissions, Submission{BatchID: r.BatchID, Region: r.Region, ReceivedAt: r.ReceivedAt})
			}
			v := ExportValue{EventID: r.Event.ID, EventType: r.Event.Type, Time: r.Event.Time}
			v.Value = installationID
			values[InstallationItem] = append(values[InstallationItem], v)
			for id, val := range r.Event.Fields {
				v.Value = val
				if s.m.Item(id) == nil {
					id = undeclaredItem
				}
				values[id] = append(values[id], v)
			}
		}
		if len(recs) < 1000 {
			break
		}
	}
	for _, it := range s.m.Items {
		vs := values[it.ID]
		if len(vs) == 0 {
			continue
		}
		x.Items = append(x.Items, ExportItem{ID: it.ID, Description: it.Description, Category: it.Category,
			RetentionDays: it.RetentionDays, Values: vs})
	}
	if vs := values[undeclaredItem]; len(vs) > 0 {
		x.Items = append(x.Items, ExportItem{ID: undeclaredItem,
			Description: "Values of items that manifest " + s.m.Version + " does not declare, accepted under an earlier manifest.",
			Category:    undeclaredItem, Values: vs})
	}
	if it := s.m.Item(InstallationItem); it == nil {
		// Without a declared installation item the id still is held.
		if vs := values[InstallationItem]; len(vs) > 0 {
			x.Items = append(x.Items, ExportItem{ID: InstallationItem, Description: "The identifier of this installation.",
				Category: "installation", Values: vs})
		}
	}
	for i := range x.Items {
		slices.SortStableFunc(x.Items[i].Values, func(a, b ExportValue) int { return a.Time.Compare(b.Time) })
	}
	other, err := s.store.Linked(ctx, installationID)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	x.Other = append(x.Other, other...)
	return x, nil
}

// WriteExport writes the export as indented JSON.
func WriteExport(w io.Writer, x *Export) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(x)
}
