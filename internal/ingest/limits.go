package ingest

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/time/rate"
)

// Limits bound what one request may cost. Every limit has a documented
// error; none is silent. The yaml names are the keys under limits: in
// serve's configuration file, and the names Validate reports.
type Limits struct {
	MaxBodyBytes         int64         `yaml:"max_body_bytes"`         // compressed body as received (413 body_too_large)
	MaxDecompressedBytes int64         `yaml:"max_decompressed_bytes"` // body after decompression (413 decompressed_too_large)
	MaxCompressionRatio  int64         `yaml:"max_compression_ratio"`  // decompressed/compressed, checked while streaming (413 compression_ratio)
	MaxDepth             int           `yaml:"max_depth"`              // JSON nesting (400 too_deep)
	MaxEvents            int           `yaml:"max_events"`             // events per batch (400 too_many_events)
	MaxEventAge          time.Duration `yaml:"max_event_age"`          // older events are rejected (bad_time)
	MaxClockSkew         time.Duration `yaml:"max_clock_skew"`         // events further in the future are rejected (bad_time)
	// ClockSkewTolerance is how far receipt time minus sent_at may be
	// before the batch's event times are corrected by it: what the
	// upload itself takes (a slow body, a queue) is not a wrong clock.
	ClockSkewTolerance time.Duration `yaml:"clock_skew_tolerance"`

	MaxInFlight  int           `yaml:"max_in_flight"` // submissions being processed at once; more wait QueueTimeout, then 429
	QueueTimeout time.Duration `yaml:"queue_timeout"` // how long a submission waits for a free slot
	MemoryBudget int64         `yaml:"memory_budget"` // bytes all in-flight submissions may hold; over it, 503

	// MaxSentAtSkew is how far a batch's sent_at may be from the server's
	// clock (400 bad_sent_at). Devices' clocks are off by days or months
	// and sent_at is what corrects them, so this only refuses what cannot
	// be a clock at all.
	MaxSentAtSkew time.Duration `yaml:"max_sent_at_skew"`

	// MinBodyRate is the slowest a body may arrive, in bytes per second,
	// averaged from the start of the request after BodyGrace (408
	// too_slow). It applies per connection and per HTTP/2 stream.
	MinBodyRate int64         `yaml:"min_body_rate"`
	BodyGrace   time.Duration `yaml:"body_grace"`

	// Per-client token buckets (requests per second and burst) on
	// submission and deletion, answered 429 rate_limited with Retry-After.
	// rate.Inf turns one off. MaxClients bounds the buckets kept; the
	// least recently seen client is forgotten first.
	SubmitRate    rate.Limit `yaml:"submit_rate"`
	SubmitBurst   int        `yaml:"submit_burst"`
	DeletionRate  rate.Limit `yaml:"deletion_rate"`
	DeletionBurst int        `yaml:"deletion_burst"`
	MaxClients    int        `yaml:"max_clients"`
}

// DefaultLimits fit batches of a few hundred events with certificates, and
// a server with a few hundred megabytes to spare.
func DefaultLimits() Limits {
	return Limits{
		MaxBodyBytes:         8 << 20,
		MaxDecompressedBytes: 32 << 20,
		MaxCompressionRatio:  100,
		MaxDepth:             8,
		MaxEvents:            1000,
		MaxEventAge:          400 * 24 * time.Hour,
		MaxClockSkew:         24 * time.Hour,
		// The slowest body an agent's batch makes (about 100 KB
		// compressed at the 4 KiB/s minimum rate) takes under a minute,
		// the queue 100 ms; clocks kept by NTP are within a second. Five
		// minutes leaves room for both and moves no event off its day
		// unless it was recorded within minutes of midnight.
		ClockSkewTolerance: 5 * time.Minute,
		// Decoding and validation are CPU-bound: a few submissions per CPU
		// keep the cores and the group commit busy; more would only add
		// latency and memory.
		MaxInFlight:  max(8, 4*runtime.GOMAXPROCS(0)),
		QueueTimeout: 100 * time.Millisecond,
		MemoryBudget: 256 << 20, // 1.6 largest batches, or hundreds of ordinary ones

		MaxSentAtSkew: 3 * 365 * 24 * time.Hour,
		// A 200 KB batch at 4 KB/s takes 50 s; an agent on the slowest
		// link still sends more than that, a trickle of 1 byte/s does not.
		MinBodyRate: 4 << 10,
		BodyGrace:   5 * time.Second,
		// An agent uploads a few times a day; many installations behind
		// one address (a company's NAT) still stay far below these.
		SubmitRate:    10,
		SubmitBurst:   100,
		DeletionRate:  1,
		DeletionBurst: 10,
		MaxClients:    100000,
	}
}

// minRatioCheck is the output size below which the ratio is not checked:
// small bodies of repetitive JSON compress very well and are harmless.
const minRatioCheck = 1 << 20

// requestShare is the most one request may hold: the buffers the body is
// decompressed into (twice the largest, growth included), the string the
// decoded events share it through, what decoding allocates (at most as
// much again; decoded_too_large beyond), and the store's encoding of the
// accepted events (no larger than the body they came from).
func (l Limits) requestShare() int64 {
	return 4*(l.MaxDecompressedBytes+readChunk) + decodeSlack + l.MaxDecompressedBytes
}

// Validate reports every limit that is out of range, naming its field.
func (l Limits) Validate() error {
	var errs []error
	const positive, notNegative, atLeastOne = "must be positive", "must not be negative", "must be at least 1"
	for _, c := range []struct {
		name string
		ok   bool
		rule string
		v    any
	}{
		{"max_body_bytes", l.MaxBodyBytes > 0, positive, l.MaxBodyBytes},
		{"max_decompressed_bytes", l.MaxDecompressedBytes > 0, positive, l.MaxDecompressedBytes},
		{"max_compression_ratio", l.MaxCompressionRatio > 0, positive, l.MaxCompressionRatio},
		{"max_depth", l.MaxDepth > 0, positive, l.MaxDepth},
		{"max_events", l.MaxEvents > 0, positive, l.MaxEvents},
		{"max_event_age", l.MaxEventAge > 0, positive, int64(l.MaxEventAge)},
		{"max_in_flight", l.MaxInFlight > 0, positive, l.MaxInFlight},
		{"memory_budget", l.MemoryBudget > 0, positive, l.MemoryBudget},
		{"max_sent_at_skew", l.MaxSentAtSkew > 0, positive, int64(l.MaxSentAtSkew)},
		{"min_body_rate", l.MinBodyRate > 0, positive, l.MinBodyRate},
		{"max_clients", l.MaxClients > 0, positive, l.MaxClients},
		{"submit_rate", l.SubmitRate > 0, positive, float64(l.SubmitRate)},
		{"deletion_rate", l.DeletionRate > 0, positive, float64(l.DeletionRate)},
		{"body_grace", l.BodyGrace >= 0, notNegative, l.BodyGrace},
		{"submit_burst", l.SubmitBurst >= 1, atLeastOne, l.SubmitBurst},
		{"deletion_burst", l.DeletionBurst >= 1, atLeastOne, l.DeletionBurst},
		{"max_clock_skew", l.MaxClockSkew >= 0, notNegative, l.MaxClockSkew},
		{"clock_skew_tolerance", l.ClockSkewTolerance >= 0, notNegative, l.ClockSkewTolerance},
		{"queue_timeout", l.QueueTimeout >= 0, notNegative, l.QueueTimeout},
	} {
		if !c.ok {
			errs = append(errs, fmt.Errorf("limits.%s: %s, is %v", c.name, c.rule, c.v))
		}
	}
	if l.MaxDepth > 0 && l.MaxDepth < 5 {
		errs = append(errs, fmt.Errorf("limits.max_depth: a batch needs at least 5 levels, is %d", l.MaxDepth))
	}
	if l.MaxBodyBytes > 0 && l.MaxDecompressedBytes > 0 && l.MaxDecompressedBytes < l.MaxBodyBytes {
		errs = append(errs, fmt.Errorf("limits.max_decompressed_bytes: must be at least max_body_bytes (%d), is %d", l.MaxBodyBytes, l.MaxDecompressedBytes))
	}
	if need := l.requestShare(); l.MemoryBudget > 0 && l.MaxDecompressedBytes > 0 && l.MemoryBudget < need {
		errs = append(errs, fmt.Errorf("limits.memory_budget: must hold one largest batch (%d bytes), is %d", need, l.MemoryBudget))
	}
	return errors.Join(errs...)
}
