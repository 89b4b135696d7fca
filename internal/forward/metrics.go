package forward

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the forwarders' Prometheus metrics, labelled by recipient. A
// nil *Metrics records nothing.
type Metrics struct {
	sent        *prometheus.CounterVec
	failed      *prometheus.CounterVec
	retried     *prometheus.CounterVec
	skipped     *prometheus.CounterVec
	deadLetter  *prometheus.GaugeVec
	lagRecords  *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		sent:        counter("provision_forward_sent_total", "User counts delivered to the recipient."),
		failed:      counter("provision_forward_failed_total", "User counts that were dead-lettered."),
		retried:     counter("provision_forward_retried_total", "Delivery attempts that were retried."),
		skipped:     counter("provision_forward_skipped_total", "User counts not sent, by reason (already_counted, suppressed, undeclared_field, too_old: the day of use is older than the recipient accepts).", "reason"),
		deadLetter:  gauge("provision_forward_dead_letters", "Dead letters waiting for the recipient."),
		lagRecords:  gauge("provision_forward_lag_records", "Log records appended but not yet read by the forwarder."),
		lastSuccess: gauge("provision_forward_last_success_timestamp_seconds", "Unix time of the last delivery that succeeded."),
	}
	for _, c := range []prometheus.Collector{m.sent, m.failed, m.retried, m.skipped, m.deadLetter, m.lagRecords, m.lastSuccess} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// counter is a counter labelled by recipient and the labels given.
func counter(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, append([]string{"recipient"}, labels...))
}

// gauge is a gauge labelled by recipient.
func gauge(name, help string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, []string{"recipient"})
}

// init makes every series of the recipient exist at zero, so dashboards and
// alerts see it before the first event.
func (m *Metrics) init(r string) {
	if m == nil {
		return
	}
	m.sent.WithLabelValues(r)
	m.failed.WithLabelValues(r)
	m.retried.WithLabelValues(r)
	m.skipped.WithLabelValues(r, "too_old")
	m.deadLetter.WithLabelValues(r)
	m.lagRecords.WithLabelValues(r)
	m.lastSuccess.WithLabelValues(r)
}

func (m *Metrics) success(r string, at time.Time) {
	if m == nil {
		return
	}
	m.sent.WithLabelValues(r).Inc()
	m.lastSuccess.WithLabelValues(r).Set(float64(at.UnixNano()) / 1e9)
}

func (m *Metrics) fail(r string) {
	if m != nil {
		m.failed.WithLabelValues(r).Inc()
	}
}

func (m *Metrics) retry(r string) {
	if m != nil {
		m.retried.WithLabelValues(r).Inc()
	}
}

func (m *Metrics) skip(r, reason string) {
	if m != nil {
		m.skipped.WithLabelValues(r, reason).Inc()
	}
}

func (m *Metrics) deadLetters(r string, n int) {
	if m != nil {
		m.deadLetter.WithLabelValues(r).Set(float64(n))
	}
}

func (m *Metrics) lag(r string, n int64) {
	if m != nil {
		m.lagRecords.WithLabelValues(r).Set(float64(max(n, 0)))
	}
}
