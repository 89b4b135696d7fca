package wire

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter bounds what a Retry-After can ask for. How long a sender
// is willing to wait is its Policy's MaxWait; this cap only keeps absurd
// values from overflowing.
const MaxRetryAfter = 24 * time.Hour

// ParseRetryAfter reads a Retry-After header, delay-seconds or an HTTP
// date, relative to now. It returns 0 for an absent, malformed or past
// value and caps it at MaxRetryAfter.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" || len(v) > 64 {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), MaxRetryAfter)
	}
	return 0
}
