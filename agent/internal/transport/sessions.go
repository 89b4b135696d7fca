package transport

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/provisionhq/provision/internal/atomicfile"
	"github.com/provisionhq/provision/internal/limitread"
)

// FileSessionCache keeps the last TLS session ticket of one server in a
// file, so that the next upload resumes the session instead of a full
// handshake, even after the process restarts: a resumed handshake skips
// the server's certificate chain and signature. The key exchange is not
// weakened: a resumed TLS 1.3 handshake still runs a fresh (EC)DHE over
// the same groups as a full one (Go has no PSK-only mode), and a ticket
// older than MaxAge is never offered.
//
// The file holds the session's secret, so it is written owner-only
// (0600), in the agent's owner-only state directory.
type FileSessionCache struct {
	Path   string
	MaxAge time.Duration // a ticket older than this is dropped; 0 means DefaultSessionMaxAge
	Now    func() time.Time

	mu sync.Mutex
}

// DefaultSessionMaxAge bounds a kept ticket's age; TLS 1.3 allows at most
// 7 days and Go's server rotates its ticket keys daily and honours them
// for 7 days.
const DefaultSessionMaxAge = 7 * 24 * time.Hour

// maxSessionFile bounds what Get reads: a session with the server's chain
// is a few KB.
const maxSessionFile = 64 << 10

var sessionMagic = []byte("provision-tls-session-v1\n")

var _ tls.ClientSessionCache = (*FileSessionCache)(nil)

func (c *FileSessionCache) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Get returns the kept session for key, if it is for that server and
// young enough. A file it cannot read is ignored: the handshake is then
// a full one, never a failure.
func (c *FileSessionCache) Get(key string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	data, err := limitread.File(c.Path, maxSessionFile)
	if err != nil {
		return nil, false
	}
	e, err := parseSession(data)
	if err != nil || e.key != key {
		return nil, false
	}
	maxAge := c.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultSessionMaxAge
	}
	if age := c.now().Sub(e.saved); age < 0 || age > maxAge {
		return nil, false
	}
	state, err := tls.ParseSessionState(e.state)
	if err != nil {
		return nil, false
	}
	cs, err := tls.NewResumptionState(e.ticket, state)
	if err != nil {
		return nil, false
	}
	return cs, true
}

// Put keeps cs for key, replacing what was kept; a nil cs (the handshake
// refused the session) removes it.
func (c *FileSessionCache) Put(key string, cs *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs == nil {
		_ = os.Remove(c.Path)
		return
	}
	ticket, state, err := cs.ResumptionState()
	if err != nil || state == nil {
		return
	}
	sb, err := state.Bytes()
	if err != nil {
		return
	}
	data := formatSession(sessionEntry{key: key, saved: c.now(), ticket: ticket, state: sb})
	if len(data) > maxSessionFile {
		return
	}
	// A ticket not kept costs one full handshake, nothing else.
	_ = atomicfile.Write(c.Path, data, 0o600)
}

type sessionEntry struct {
	key    string
	saved  time.Time
	ticket []byte
	state  []byte
}

// formatSession lays an entry out as the magic, the save time in Unix
// seconds, then key, ticket and state, each after its 32-bit length.
func formatSession(e sessionEntry) []byte {
	var b bytes.Buffer
	b.Write(sessionMagic)
	_ = binary.Write(&b, binary.BigEndian, e.saved.Unix())
	for _, f := range [][]byte{[]byte(e.key), e.ticket, e.state} {
		_ = binary.Write(&b, binary.BigEndian, uint32(len(f)))
		b.Write(f)
	}
	return b.Bytes()
}

var errBadSession = errors.New("not a kept TLS session")

func parseSession(data []byte) (sessionEntry, error) {
	var e sessionEntry
	rest, ok := bytes.CutPrefix(data, sessionMagic)
	if !ok || len(rest) < 8 {
		return e, errBadSession
	}
	e.saved = time.Unix(int64(binary.BigEndian.Uint64(rest)), 0)
	rest = rest[8:]
	var fields [3][]byte
	for i := range fields {
		if len(rest) < 4 {
			return e, errBadSession
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return e, errBadSession
		}
		fields[i], rest = rest[:n], rest[n:]
	}
	if len(rest) != 0 || len(fields[1]) == 0 || len(fields[2]) == 0 {
		return e, errBadSession
	}
	e.key, e.ticket, e.state = string(fields[0]), fields[1], fields[2]
	return e, nil
}
