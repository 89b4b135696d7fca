package web

import (
	"context"
	"net/url"

	"github.com/provisionhq/provision/internal/report"
)

// snapshot is the report views materialised after a rollup update: the
// default period of both reports, and the quality report of each version
// its filter offers. Pages and /v1/reports answer these from memory until
// the next update replaces them; other periods are built on demand.
type snapshot struct {
	sections map[string]cached
	docs     map[string]report.Document
}

func (s *snapshot) section(key string) (cached, bool) {
	if s == nil {
		return cached{}, false
	}
	c, ok := s.sections[key]
	return c, ok
}

func (s *snapshot) doc(key string) (report.Document, bool) {
	if s == nil {
		return nil, false
	}
	d, ok := s.docs[key]
	return d, ok
}

// materialise builds the snapshot of the views as of now.
func (s *server) materialise(ctx context.Context) (*snapshot, error) {
	snap := &snapshot{sections: map[string]cached{}, docs: map[string]report.Document{}}
	add := func(kind string, o report.Options) (report.Document, error) {
		doc, err := s.build(ctx, kind, o)
		if err != nil {
			return nil, err
		}
		c, err := sectionOf(doc)
		if err != nil {
			return nil, err
		}
		key := sectionKey(kind, o)
		snap.sections[key], snap.docs[key] = c, doc
		return doc, nil
	}
	o := s.options(ctx, url.Values{})
	doc, err := add("quality", o)
	if err != nil {
		return nil, err
	}
	if _, err := add("threats", o); err != nil {
		return nil, err
	}
	for _, v := range doc.(*report.Quality).Versions {
		ov := o
		ov.Version = v
		if _, err := add("quality", ov); err != nil {
			return nil, err
		}
	}
	return snap, nil
}
