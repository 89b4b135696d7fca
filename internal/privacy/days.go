package privacy

import "time"

// maxDaySpan bounds the days of one batch that DaySpans lists one by one;
// a batch that spans more (an event without a time counts on the day of
// receipt, while its oldest day says year 1) adds its ends and its day of
// receipt. The days of the events removed are added when the erasure
// completes anyway; these only cover a crash in the middle.
const maxDaySpan = 3660

// DaySpans collects, for a DayFinder, the distinct UTC days stored batches
// span.
type DaySpans struct {
	seen map[int64]bool
	days []string
}

// Add adds a batch's days: from its oldest to its newest event's day and
// its day of receipt, each in UTC days since the Unix epoch.
func (s *DaySpans) Add(lo, hi, received int64) {
	s.add(received)
	if hi-lo > maxDaySpan {
		s.add(lo)
		s.add(hi)
		return
	}
	for d := lo; d <= hi; d++ {
		s.add(d)
	}
}

func (s *DaySpans) add(d int64) {
	if s.seen == nil {
		s.seen = map[int64]bool{}
	}
	if !s.seen[d] {
		s.seen[d] = true
		s.days = append(s.days, time.Unix(d*86400, 0).UTC().Format(time.DateOnly))
	}
}

// Days returns the days added, as YYYY-MM-DD.
func (s *DaySpans) Days() []string { return s.days }

// ReadDaySpans reads the days of every row of (oldest event's day, newest
// event's day, day of receipt), each in UTC days since the Unix epoch: the
// rows a store's DayFinder selects. The caller closes rows.
func ReadDaySpans(rows Rows) ([]string, error) {
	var spans DaySpans
	for rows.Next() {
		var lo, hi, received int64
		if err := rows.Scan(&lo, &hi, &received); err != nil {
			return nil, err
		}
		spans.Add(lo, hi, received)
	}
	return spans.Days(), rows.Err()
}
