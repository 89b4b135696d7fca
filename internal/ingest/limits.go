package ingest

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Limits bound what one request may cost. Every limit has a documented
// error; none is silent.
type Limits struct {
	MaxBodyBytes         int64         // compressed body as received (413 body_too_large)
	MaxDecompressedBytes int64         // body after decompression (413 decompressed_too_large)
	MaxCompressionRatio  int64         // decompressed/compressed, checked while streaming (413 compression_ratio)
	MaxDepth             int           // JSON nesting (400 too_deep)
	MaxEvents            int           // events per batch (400 too_many_events)
	MaxEventAge          time.Duration // older events are rejected (bad_time)
	MaxClockSkew         time.Duration // events further in the future are rejected (bad_time)

	MaxInFlight  int           // submissions being processed at once; more wait QueueTimeout, then 429
	QueueTimeout time.Duration // how long a submission waits for a free slot
	MemoryBudget int64         // bytes all in-flight submissions may hold; over it, 503
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
		// Decoding and validation are CPU-bound: a few submissions per CPU
		// keep the cores and the group commit busy; more would only add
		// latency and memory.
		MaxInFlight:  max(8, 4*runtime.GOMAXPROCS(0)),
		QueueTimeout: 100 * time.Millisecond,
		MemoryBudget: 256 << 20, // 1.9 largest batches, or hundreds of ordinary ones
	}
}

// minRatioCheck is the output size below which the ratio is not checked:
// small bodies of repetitive JSON compress very well and are harmless.
const minRatioCheck = 1 << 20

// memoryFactor estimates the memory one decompressed byte costs until the
// response is sent: the byte itself, the decoded events, the encoded fields
// for the store.
const memoryFactor = 4

// Validate reports every limit that is out of range, naming its field.
func (l Limits) Validate() error {
	var errs []error
	pos := func(name string, v int64) {
		if v <= 0 {
			errs = append(errs, fmt.Errorf("limits.%s: must be positive, is %d", name, v))
		}
	}
	pos("max_body_bytes", l.MaxBodyBytes)
	pos("max_decompressed_bytes", l.MaxDecompressedBytes)
	pos("max_compression_ratio", l.MaxCompressionRatio)
	pos("max_depth", int64(l.MaxDepth))
	pos("max_events", int64(l.MaxEvents))
	pos("max_event_age", int64(l.MaxEventAge))
	pos("max_in_flight", int64(l.MaxInFlight))
	pos("memory_budget", l.MemoryBudget)
	if l.MaxClockSkew < 0 {
		errs = append(errs, fmt.Errorf("limits.max_clock_skew: must not be negative, is %s", l.MaxClockSkew))
	}
	if l.QueueTimeout < 0 {
		errs = append(errs, fmt.Errorf("limits.queue_timeout: must not be negative, is %s", l.QueueTimeout))
	}
	if l.MaxDepth > 0 && l.MaxDepth < 5 {
		errs = append(errs, fmt.Errorf("limits.max_depth: a batch needs at least 5 levels, is %d", l.MaxDepth))
	}
	if l.MaxBodyBytes > 0 && l.MaxDecompressedBytes > 0 && l.MaxDecompressedBytes < l.MaxBodyBytes {
		errs = append(errs, fmt.Errorf("limits.max_decompressed_bytes: must be at least max_body_bytes (%d), is %d", l.MaxBodyBytes, l.MaxDecompressedBytes))
	}
	if need := memoryFactor * (l.MaxDecompressedBytes + readChunk); l.MemoryBudget > 0 && l.MaxDecompressedBytes > 0 && l.MemoryBudget < need {
		errs = append(errs, fmt.Errorf("limits.memory_budget: must hold one largest batch (%d bytes), is %d", need, l.MemoryBudget))
	}
	return errors.Join(errs...)
}
