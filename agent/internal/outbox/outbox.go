// Package outbox is the agent's durable store: events waiting to be sent,
// the batch in flight, deletion requests, consent and the bounded log of
// what was sent.
//
// It is built on bbolt rather than SQLite: the agent needs a single-writer
// key/value store with ordered keys and crash-safe, fsync'd transactions,
// and bbolt gives exactly that in a small pure-Go package whose copy-on-write
// B+tree cannot be left half-written (the meta page flips only after the data
// is synced). Its DB.Batch coalesces concurrent writers into one transaction
// and one fsync, which is the group commit the agent needs. It adds far less
// to the binary and to resident memory than an SQL engine would.
package outbox

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/provisionhq/provision"
)

// Bucket names.
var (
	bucketEvents    = []byte("events")    // seq → record
	bucketAgg       = []byte("agg")       // aggregation key → seq of the open event
	bucketMeta      = []byte("meta")      // counters, consent, inflight batch, last-queued digests
	bucketDeletions = []byte("deletions") // request id → deletion request
	bucketSent      = []byte("sent")      // seq → sent-log entry
)

// Meta keys.
var (
	keyCount       = []byte("count")
	keyBytes       = []byte("bytes")
	keyDropped     = []byte("dropped")
	keyInflight    = []byte("inflight")
	keySentBytes   = []byte("sent_bytes")
	keySentCount   = []byte("sent_count")
	keyConsent     = []byte("consent")
	prefixLastSeen = []byte("last:")
)

// Limits bound the store. Zero values take the defaults.
type Limits struct {
	MaxEvents    int           // events waiting to be sent
	MaxBytes     int64         // encoded bytes of waiting events
	MaxAge       time.Duration // waiting events older than this are dropped
	SentEntries  int           // entries kept in the sent log
	SentBytes    int64         // bytes kept in the sent log
	MaxEventSize int           // largest single encoded event accepted
}

// DefaultLimits are sized for a desktop agent: a few days of a busy
// installation's aggregated events in a few megabytes.
func DefaultLimits() Limits {
	return Limits{
		MaxEvents:    10000,
		MaxBytes:     8 << 20,
		MaxAge:       30 * 24 * time.Hour,
		SentEntries:  200,
		SentBytes:    4 << 20,
		MaxEventSize: 256 << 10,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	orDefault(&l.MaxEvents, d.MaxEvents)
	orDefault(&l.MaxBytes, d.MaxBytes)
	orDefault(&l.MaxAge, d.MaxAge)
	orDefault(&l.SentEntries, d.SentEntries)
	orDefault(&l.SentBytes, d.SentBytes)
	orDefault(&l.MaxEventSize, d.MaxEventSize)
	return l
}

// orDefault sets a limit left zero (or negative) to its default.
func orDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// ErrTooLarge is returned for an event larger than Limits.MaxEventSize.
var ErrTooLarge = errors.New("event too large for the outbox")

// Store is an open outbox. It is safe for concurrent use; several processes
// take turns through the file lock.
type Store struct {
	// swap is held shared by every transaction and exclusively while
	// Compact replaces the file under db.
	swap   sync.RWMutex
	db     *bolt.DB
	path   string
	limits Limits
	now    func() time.Time
}

// Open opens or creates the outbox file at path with owner-only permissions.
func Open(path string, limits Limits, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 30 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("outbox: open %s: %w", path, err)
	}
	// A burst of records waits at most this long to share one fsync.
	db.MaxBatchDelay = 2 * time.Millisecond
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketEvents, bucketAgg, bucketMeta, bucketDeletions, bucketSent} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("outbox: %w", err)
	}
	return &Store{db: db, path: path, limits: limits.withDefaults(), now: now}, nil
}

// Close closes the file.
func (s *Store) Close() error {
	s.swap.Lock()
	defer s.swap.Unlock()
	return s.db.Close()
}

// record is how an event waits in the outbox. The event stays encoded so
// that counting a repeat does not decode and re-encode it.
//
// Region is the region whose terms the user had accepted when the event was
// recorded: its fields were chosen and checked under those terms, so it is
// sent under them, in a batch of that region, whatever the consent says by
// the time it leaves. Records queued before regions were kept have none.
type record struct {
	Key    string          `json:"k,omitempty"` // aggregation key, "" for events never aggregated
	Region string          `json:"r,omitempty"`
	Queued int64           `json:"q"`           // unix seconds when first queued
	Count  int64           `json:"n,omitempty"` // repeats, for aggregated events
	Event  json.RawMessage `json:"e"`
}

// Entry is one waiting event and the region it was recorded under ("" for
// one queued before regions were kept).
type Entry struct {
	Seq    uint64
	Region string
	Event  provision.Event
	Size   int
}

// maxCount is the largest event.count the manifest allows.
const maxCount = 1_000_000_000

// Add makes the event, recorded under the region's terms, durable before it
// returns. With a non-empty key, an event with the same key still waiting
// (and not in flight) and recorded under the same region has its count
// raised instead, so repeats take no more room. Concurrent calls share one
// transaction and one fsync.
func (s *Store) Add(ev *provision.Event, region, key string) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if len(body) > s.limits.MaxEventSize {
		return ErrTooLarge
	}
	now := s.now()
	return s.batch(func(tx *bolt.Tx) error {
		events, agg, meta := tx.Bucket(bucketEvents), tx.Bucket(bucketAgg), tx.Bucket(bucketMeta)
		if key != "" {
			if seqb := agg.Get([]byte(key)); seqb != nil {
				if raw := events.Get(seqb); raw != nil {
					var r record
					if err := json.Unmarshal(raw, &r); err != nil {
						return fmt.Errorf("outbox: corrupt record: %w", err)
					}
					if r.Region == region {
						if r.Count < maxCount {
							r.Count++
						}
						return putRecord(events, meta, seqb, &r, len(raw))
					}
					// Recorded under other terms: this repeat starts a
					// new event under the current ones.
				}
			}
		}
		seq, err := events.NextSequence()
		if err != nil {
			return err
		}
		r := record{Key: key, Region: region, Queued: now.Unix(), Event: body}
		if key != "" {
			r.Count = 1
		}
		seqb := seqKey(seq)
		if err := putRecord(events, meta, seqb, &r, 0); err != nil {
			return err
		}
		if key != "" {
			if err := agg.Put([]byte(key), seqb); err != nil {
				return err
			}
		}
		return s.enforce(tx, now)
	})
}

func putRecord(events, meta *bolt.Bucket, seqb []byte, r *record, oldSize int) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if err := events.Put(seqb, v); err != nil {
		return err
	}
	if oldSize == 0 {
		addCounter(meta, keyCount, 1)
	}
	addCounter(meta, keyBytes, int64(len(v)-oldSize))
	return nil
}

// enforce drops the oldest events while the outbox is over its bounds.
func (s *Store) enforce(tx *bolt.Tx, now time.Time) error {
	events, meta := tx.Bucket(bucketEvents), tx.Bucket(bucketMeta)
	cutoff := now.Add(-s.limits.MaxAge).Unix()
	c := events.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("outbox: corrupt record: %w", err)
		}
		over := counter(meta, keyCount) > int64(s.limits.MaxEvents) || counter(meta, keyBytes) > s.limits.MaxBytes
		if !over && r.Queued >= cutoff {
			return nil
		}
		if err := deleteRecord(tx, k, v, &r); err != nil {
			return err
		}
		addCounter(meta, keyDropped, 1)
	}
	return nil
}

func deleteRecord(tx *bolt.Tx, k, v []byte, r *record) error {
	events, agg, meta := tx.Bucket(bucketEvents), tx.Bucket(bucketAgg), tx.Bucket(bucketMeta)
	if r.Key != "" {
		if cur := agg.Get([]byte(r.Key)); cur != nil && bytes.Equal(cur, k) {
			if err := agg.Delete([]byte(r.Key)); err != nil {
				return err
			}
		}
	}
	size := len(v)
	if err := events.Delete(k); err != nil {
		return err
	}
	addCounter(meta, keyCount, -1)
	addCounter(meta, keyBytes, -int64(size))
	return nil
}

// Pending returns the oldest waiting events, at most maxEvents of them and
// at most maxBytes of encoded events (always at least one if any waits).
func (s *Store) Pending(maxEvents, maxBytes int) ([]Entry, error) {
	var out []Entry
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = oldest(tx.Bucket(bucketEvents).Cursor(), maxEvents, maxBytes, false, nil)
		return err
	})
	return out, err
}

// oldest reads the waiting events from the oldest, at most maxEvents of
// them and at most maxBytes of encoded events (always one if any waits).
// With oneRegion it passes over the events of other regions than the
// first one's. kept, when set, is told of each record taken.
func oldest(c *bolt.Cursor, maxEvents, maxBytes int, oneRegion bool, kept func(k []byte, r *record)) ([]Entry, error) {
	var out []Entry
	total := 0
	for k, v := c.First(); k != nil && len(out) < maxEvents; k, v = c.Next() {
		if !oneRegion && len(out) > 0 && total+len(v) > maxBytes {
			break // without reading a record it would not take
		}
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("outbox: corrupt record: %w", err)
		}
		if oneRegion && len(out) > 0 && r.Region != out[0].Region {
			continue
		}
		if len(out) > 0 && total+len(v) > maxBytes {
			break
		}
		e, err := decodeEntry(k, &r, len(v))
		if err != nil {
			return nil, err
		}
		total += len(v)
		out = append(out, e)
		if kept != nil {
			kept(k, &r)
		}
	}
	return out, nil
}

// decodeEntry makes the entry of record r, stored under key k in size
// bytes.
func decodeEntry(k []byte, r *record, size int) (Entry, error) {
	var ev provision.Event
	dec := json.NewDecoder(bytes.NewReader(r.Event))
	dec.UseNumber()
	if err := dec.Decode(&ev); err != nil {
		return Entry{}, fmt.Errorf("outbox: corrupt event: %w", err)
	}
	if r.Key != "" {
		if ev.Fields == nil {
			ev.Fields = map[string]any{}
		}
		ev.Fields["event.count"] = r.Count
	}
	return Entry{Seq: binary.BigEndian.Uint64(k), Region: r.Region, Event: ev, Size: size}, nil
}

// Inflight is a batch handed to the server and not yet confirmed. It is kept
// byte for byte so that a retry is the same batch under the same id.
type Inflight struct {
	BatchID string          `json:"batch_id"`
	Seqs    []uint64        `json:"seqs"`
	Body    json.RawMessage `json:"body"` // the batch JSON, uncompressed
	Since   time.Time       `json:"since"`
}

// StartBatch returns the batch in flight or, when there is none, takes the
// oldest waiting event and the oldest others recorded under the same region
// (at most maxEvents, and maxBytes of encoded events but always one), lets
// build make the batch of them, and records it as in flight — in one
// transaction, so that no repeat counted meanwhile is lost. A batch never
// mixes regions: events recorded under other terms wait for their own.
// Its events stop taking repeats: a repeat seen from now on starts a new
// event, so the batch never changes under its id. It returns nil when
// nothing waits.
func (s *Store) StartBatch(maxEvents, maxBytes int, build func([]Entry) (*Inflight, error)) (*Inflight, error) {
	var out *Inflight
	err := s.update(func(tx *bolt.Tx) error {
		out = nil
		meta, events, agg := tx.Bucket(bucketMeta), tx.Bucket(bucketEvents), tx.Bucket(bucketAgg)
		if v := meta.Get(keyInflight); v != nil {
			out = new(Inflight)
			return json.Unmarshal(v, out)
		}
		var keys []string
		entries, err := oldest(events.Cursor(), maxEvents, maxBytes, true, func(k []byte, r *record) {
			if r.Key != "" {
				if cur := agg.Get([]byte(r.Key)); cur != nil && bytes.Equal(cur, k) {
					keys = append(keys, r.Key)
				}
			}
		})
		if err != nil {
			return err
		}
		if len(entries) == 0 {
			return nil
		}
		in, err := build(entries)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if err := agg.Delete([]byte(k)); err != nil {
				return err
			}
		}
		v, err := json.Marshal(in)
		if err != nil {
			return err
		}
		out = in
		return meta.Put(keyInflight, v)
	})
	return out, err
}

// GetInflight returns the batch in flight, or nil.
func (s *Store) GetInflight() (*Inflight, error) {
	var in *Inflight
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get(keyInflight)
		if v == nil {
			return nil
		}
		in = new(Inflight)
		return json.Unmarshal(v, in)
	})
	return in, err
}

// Complete removes the events of the batch in flight and the batch itself,
// and appends the entry to the sent log, in one transaction.
func (s *Store) Complete(seqs []uint64, sentEntry []byte) error {
	return s.update(func(tx *bolt.Tx) error {
		events := tx.Bucket(bucketEvents)
		for _, seq := range seqs {
			k := seqKey(seq)
			v := events.Get(k)
			if v == nil {
				continue // dropped by a bound meanwhile
			}
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("outbox: corrupt record: %w", err)
			}
			if err := deleteRecord(tx, k, v, &r); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketMeta).Delete(keyInflight); err != nil {
			return err
		}
		if sentEntry != nil {
			return s.appendSent(tx, sentEntry)
		}
		return nil
	})
}

// AppendSent adds an entry to the sent log on its own.
func (s *Store) AppendSent(entry []byte) error {
	return s.update(func(tx *bolt.Tx) error { return s.appendSent(tx, entry) })
}

func (s *Store) appendSent(tx *bolt.Tx, entry []byte) error {
	sent, meta := tx.Bucket(bucketSent), tx.Bucket(bucketMeta)
	seq, err := sent.NextSequence()
	if err != nil {
		return err
	}
	if err := sent.Put(seqKey(seq), entry); err != nil {
		return err
	}
	addCounter(meta, keySentBytes, int64(len(entry)))
	addCounter(meta, keySentCount, 1)
	c := sent.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		if counter(meta, keySentCount) <= int64(s.limits.SentEntries) && counter(meta, keySentBytes) <= s.limits.SentBytes {
			break
		}
		if bytes.Equal(k, seqKey(seq)) {
			break // always keep the newest entry
		}
		addCounter(meta, keySentBytes, -int64(len(v)))
		addCounter(meta, keySentCount, -1)
		if err := sent.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Sent returns the newest entries of the sent log, oldest first; last <= 0
// returns all.
func (s *Store) Sent(last int) ([][]byte, error) {
	var out [][]byte
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketSent).Cursor()
		for k, v := c.Last(); k != nil && (last <= 0 || len(out) < last); k, v = c.Prev() {
			out = append(out, bytes.Clone(v))
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// Stats describes the outbox.
type Stats struct {
	Events    int64 `json:"events"`
	Bytes     int64 `json:"bytes"`
	Dropped   int64 `json:"dropped"`
	Deletions int   `json:"deletions"`
	Inflight  bool  `json:"inflight"`
}

// Stats returns the counters.
func (s *Store) Stats() (Stats, error) {
	var st Stats
	err := s.view(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		st.Events, st.Bytes, st.Dropped = counter(meta, keyCount), counter(meta, keyBytes), counter(meta, keyDropped)
		st.Deletions = tx.Bucket(bucketDeletions).Stats().KeyN
		st.Inflight = meta.Get(keyInflight) != nil
		return nil
	})
	return st, err
}

// Deletion is a request to erase everything of an installation id. It is
// kept until the server acknowledges it and no bound ever drops it.
type Deletion struct {
	InstallationID string    `json:"installation_id"`
	RequestID      string    `json:"request_id"`
	Queued         time.Time `json:"queued"`
}

// Deletions returns the deletion requests waiting to be sent.
func (s *Store) Deletions() ([]Deletion, error) {
	var out []Deletion
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeletions).ForEach(func(_, v []byte) error {
			var d Deletion
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("outbox: corrupt deletion request: %w", err)
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}

// CompleteDeletion removes an acknowledged deletion request and logs it;
// once none is left it compacts the file (see Compact).
func (s *Store) CompleteDeletion(requestID string, sentEntry []byte) error {
	left := 0
	err := s.update(func(tx *bolt.Tx) error {
		dels := tx.Bucket(bucketDeletions)
		if err := dels.Delete([]byte(requestID)); err != nil {
			return err
		}
		if k, _ := dels.Cursor().First(); k != nil {
			left = 1
		}
		if sentEntry != nil {
			return s.appendSent(tx, sentEntry)
		}
		return nil
	})
	if err != nil || left > 0 {
		return err
	}
	// The request held the withdrawn id; its freed page must not keep it.
	return s.Compact()
}

// Consent returns the stored consent document, or nil.
func (s *Store) Consent() ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		out = bytes.Clone(tx.Bucket(bucketMeta).Get(keyConsent))
		return nil
	})
	return out, err
}

// Accept stores a new consent document.
func (s *Store) Accept(consent []byte) error {
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyConsent, consent)
	})
}

// Withdraw empties the outbox and the sent log, forgets the batch in flight
// and what was last queued, queues the deletion request and stores the new
// consent document, all in one transaction: after a crash either all of it
// happened or none. It then compacts the file, so no freed page keeps the
// withdrawn events' bytes.
func (s *Store) Withdraw(consent []byte, del *Deletion) error {
	if err := s.withdraw(consent, del); err != nil {
		return err
	}
	return s.Compact()
}

func (s *Store) withdraw(consent []byte, del *Deletion) error {
	dv, err := json.Marshal(del)
	if err != nil {
		return err
	}
	return s.update(func(tx *bolt.Tx) error {
		// The sent log holds the batches as they were sent under the
		// withdrawn id: it goes with them.
		for _, name := range [][]byte{bucketEvents, bucketAgg, bucketSent} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		var stale [][]byte
		c := meta.Cursor()
		for k, _ := c.Seek(prefixLastSeen); k != nil && bytes.HasPrefix(k, prefixLastSeen); k, _ = c.Next() {
			stale = append(stale, bytes.Clone(k))
		}
		stale = append(stale, keyInflight, keyCount, keyBytes, keySentBytes, keySentCount)
		for _, k := range stale {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketDeletions).Put([]byte(del.RequestID), dv); err != nil {
			return err
		}
		return meta.Put(keyConsent, consent)
	})
}

// LastSeen returns what was stored under name by SetLastSeen.
func (s *Store) LastSeen(name string) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		out = bytes.Clone(tx.Bucket(bucketMeta).Get(append(bytes.Clone(prefixLastSeen), name...)))
		return nil
	})
	return out, err
}

// AddIfChanged queues the event, recorded under the region's terms, unless
// the digest stored under name equals digest, and stores digest, in one
// transaction. Daily events use it so that a second collection on the same
// day queues nothing new.
func (s *Store) AddIfChanged(ev *provision.Event, region, name string, digest []byte) (bool, error) {
	body, err := json.Marshal(ev)
	if err != nil {
		return false, err
	}
	if len(body) > s.limits.MaxEventSize {
		return false, ErrTooLarge
	}
	now := s.now()
	added := false
	err = s.batch(func(tx *bolt.Tx) error {
		added = false
		events, meta := tx.Bucket(bucketEvents), tx.Bucket(bucketMeta)
		k := append(bytes.Clone(prefixLastSeen), name...)
		if bytes.Equal(meta.Get(k), digest) {
			return nil
		}
		seq, err := events.NextSequence()
		if err != nil {
			return err
		}
		if err := putRecord(events, meta, seqKey(seq), &record{Region: region, Queued: now.Unix(), Event: body}, 0); err != nil {
			return err
		}
		if err := meta.Put(k, digest); err != nil {
			return err
		}
		added = true
		return s.enforce(tx, now)
	})
	return added, err
}

func seqKey(seq uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return b[:]
}

func counter(b *bolt.Bucket, k []byte) int64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}

func addCounter(b *bolt.Bucket, k []byte, d int64) {
	n := counter(b, k) + d
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(n))
	// Put only fails on a read-only transaction or a bad key, neither of
	// which can happen here.
	_ = b.Put(k, v[:])
}

// Check verifies the consistency of the file's pages and of the counters.
func (s *Store) Check() error {
	return s.view(func(tx *bolt.Tx) error {
		var first error
		for err := range tx.Check() { // drain: the checker stops only at the end
			if first == nil {
				first = fmt.Errorf("outbox: %w", err)
			}
		}
		if first != nil {
			return first
		}
		meta := tx.Bucket(bucketMeta)
		var n, size int64
		err := tx.Bucket(bucketEvents).ForEach(func(_, v []byte) error {
			n++
			size += int64(len(v))
			return nil
		})
		if err != nil {
			return err
		}
		if n != counter(meta, keyCount) || size != counter(meta, keyBytes) {
			return fmt.Errorf("outbox: counters say %d events of %d bytes, found %d of %d", counter(meta, keyCount), counter(meta, keyBytes), n, size)
		}
		return nil
	})
}
