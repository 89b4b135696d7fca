package web

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// Session lifetimes: an operator idle for IdleTimeout logs in again, and
// no session outlives AbsoluteTimeout however busy.
const (
	DefaultIdleTimeout     = 30 * time.Minute
	DefaultAbsoluteTimeout = 12 * time.Hour
	// maxSessions bounds the table; past it the oldest session is dropped
	// (one operator team never holds this many).
	maxSessions = 1000
)

// sessions is the server-side table of dashboard sessions. A login gets
// a fresh random id; the cookie carries the id and the table keys its
// SHA-256, so a dump of the table holds nothing a browser could present.
// Logout deletes the entry, so an old cookie is refused at once.
//
// The table lives in the process: a restart logs operators out, which
// costs one login, and several replicas behind a balancer need sticky
// sessions for the dashboard (ingest needs nothing of the kind).
type sessions struct {
	idle, absolute time.Duration
	now            func() time.Time

	mu   sync.Mutex
	byID map[[sha256.Size]byte]*session
}

type session struct {
	created, seen time.Time
}

func newSessions(idle, absolute time.Duration, now func() time.Time) *sessions {
	return &sessions{idle: idle, absolute: absolute, now: now, byID: make(map[[sha256.Size]byte]*session)}
}

// create starts a session and returns the id for the cookie.
func (s *sessions) create() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	t := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expireLocked(t)
	if len(s.byID) >= maxSessions {
		var oldest [sha256.Size]byte
		var first time.Time
		for k, v := range s.byID {
			if first.IsZero() || v.created.Before(first) {
				oldest, first = k, v.created
			}
		}
		delete(s.byID, oldest)
	}
	s.byID[sha256.Sum256([]byte(id))] = &session{created: t, seen: t}
	return id, nil
}

// valid tells whether id names a live session, and marks it used.
func (s *sessions) valid(id string) bool {
	if id == "" {
		return false
	}
	k := sha256.Sum256([]byte(id))
	t := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.byID[k]
	if v == nil {
		return false
	}
	if s.expired(v, t) {
		delete(s.byID, k)
		return false
	}
	v.seen = t
	return true
}

// revoke ends the session id names, if any.
func (s *sessions) revoke(id string) {
	k := sha256.Sum256([]byte(id))
	s.mu.Lock()
	delete(s.byID, k)
	s.mu.Unlock()
}

func (s *sessions) expired(v *session, t time.Time) bool {
	return t.Sub(v.seen) >= s.idle || t.Sub(v.created) >= s.absolute
}

func (s *sessions) expireLocked(t time.Time) {
	for k, v := range s.byID {
		if s.expired(v, t) {
			delete(s.byID, k)
		}
	}
}
