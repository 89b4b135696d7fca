package web

import (
	"html/template"
	"sync"
	"time"
)

// maxCached bounds the number of cached sections.
const maxCached = 64

// sectionCache keeps rendered report sections for a while, so that moving
// between dashboard pages does not rebuild the same report.
type sectionCache struct {
	ttl time.Duration
	now func() time.Time
	mu  sync.Mutex
	m   map[string]cached
}

type cached struct {
	html     template.HTML
	versions []string // for the version filter
	built    time.Time
}

func newSectionCache(ttl time.Duration, now func() time.Time) *sectionCache {
	return &sectionCache{ttl: ttl, now: now, m: make(map[string]cached)}
}

// get returns the cached section for key, or builds and keeps it. Errors
// are not cached.
func (c *sectionCache) get(key string, build func() (cached, error)) (cached, error) {
	if c.ttl < 0 {
		return build()
	}
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[key]
	c.mu.Unlock()
	if ok && now.Sub(e.built) < c.ttl {
		return e, nil
	}
	e, err := build()
	if err != nil {
		return e, err
	}
	c.put(key, e)
	return e, nil
}

// put keeps e under key, built now.
func (c *sectionCache) put(key string, e cached) {
	if c.ttl < 0 {
		return
	}
	now := c.now()
	e.built = now
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxCached {
		for k, v := range c.m {
			if now.Sub(v.built) >= c.ttl || len(c.m) >= maxCached {
				delete(c.m, k)
			}
		}
	}
	c.m[key] = e
}
