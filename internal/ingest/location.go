package ingest

import (
	"github.com/provisionhq/provision"
	"github.com/provisionhq/provision/internal/geo"
	"github.com/provisionhq/provision/internal/manifest"
)

// AddLocation writes the location derived from the connection into the
// events that may carry it. This is the one place that decides it, from
// the manifest alone: an item the manifest declares with source: server
// goes to the event types it lists, for the regions it lists, and only
// when the value passes the item's own check; the subdivision only with
// the country. Stores, logs and fakes read it back with Event.Location.
func AddLocation(m *manifest.Manifest, region string, loc geo.Location, events []provision.Event) {
	if loc.Country == "" {
		return
	}
	country, subdivision := serverItem(m, provision.ItemCountry), serverItem(m, provision.ItemSubdivision)
	carries := func(it *manifest.Item, eventType, v string) bool {
		return it != nil && v != "" && m.InEvent(it, eventType) && it.ForRegion(region) &&
			len(m.CheckValue(nil, 0, it, v)) == 0
	}
	for i := range events {
		ev := &events[i]
		if !carries(country, ev.Type, loc.Country) {
			continue
		}
		if ev.Fields == nil {
			ev.Fields = map[string]any{}
		}
		ev.Fields[provision.ItemCountry] = loc.Country
		if carries(subdivision, ev.Type, loc.Subdivision) {
			ev.Fields[provision.ItemSubdivision] = loc.Subdivision
		}
	}
}

// serverItem is the item when the manifest declares it as derived by the
// server; an item an agent would send is never overwritten.
func serverItem(m *manifest.Manifest, id string) *manifest.Item {
	if it := m.Item(id); it != nil && it.Source == manifest.SourceServer {
		return it
	}
	return nil
}
