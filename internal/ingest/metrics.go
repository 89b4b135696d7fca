package ingest

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/provisionhq/provision"
)

// metrics are the server's Prometheus series. No label ever carries an
// address, an installation id or any other value taken from a request
// except the bounded set of codes.
type metrics struct {
	requests       *prometheus.CounterVec   // route, code
	duration       *prometheus.HistogramVec // route
	accepted       prometheus.Counter
	rejected       *prometheus.CounterVec // code
	batchEvents    prometheus.Histogram
	bodyBytes      prometheus.Histogram
	decompressed   prometheus.Histogram
	duplicates     prometheus.Counter
	shed           *prometheus.CounterVec // code
	inFlight       prometheus.Gauge
	appendDuration prometheus.Histogram
	clockSkew      *prometheus.HistogramVec // direction
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provision_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "provision_http_request_duration_seconds", Help: "Time to answer a request, by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"route"}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "provision_events_accepted_total", Help: "Events accepted and durably appended to the log.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provision_events_rejected_total", Help: "Events rejected individually, by reason code.",
		}, []string{"code"}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "provision_batch_events", Help: "Events per submitted batch.",
			Buckets: []float64{1, 10, 50, 100, 250, 500, 1000},
		}),
		bodyBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "provision_batch_body_bytes", Help: "Submission body size as received (compressed).",
			Buckets: prometheus.ExponentialBuckets(256, 4, 10),
		}),
		decompressed: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "provision_batch_decompressed_bytes", Help: "Submission body size after decompression.",
			Buckets: prometheus.ExponentialBuckets(256, 4, 10),
		}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "provision_batches_duplicate_total", Help: "Batches received again and answered from the log.",
		}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provision_submissions_shed_total", Help: "Submissions refused with 429/503 to shed load, by code.",
		}, []string{"code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "provision_submissions_in_flight", Help: "Submissions being processed now.",
		}),
		appendDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "provision_log_append_duration_seconds", Help: "Time to make one batch durable.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2, 16),
		}),
		clockSkew: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "provision_batch_clock_skew_seconds",
			Help: "How far a batch's sent_at was from the server's clock at receipt, by direction: ahead (the device's clock is ahead) or behind.",
			Buckets: []float64{1, 10, 60, 300, 3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400, 30 * 86400, 90 * 86400,
				365 * 86400, 3 * 365 * 86400},
		}, []string{"direction"}),
	}
	reg.MustRegister(m.requests, m.duration, m.accepted, m.rejected, m.batchEvents, m.bodyBytes,
		m.decompressed, m.duplicates, m.shed, m.inFlight, m.appendDuration, m.clockSkew)
	return m
}

// observeSkew records how far the device's clock was from the server's
// when a batch arrived.
func (m *metrics) observeSkew(sentAt, now time.Time) {
	d := sentAt.Sub(now)
	dir := "ahead"
	if d <= 0 {
		dir, d = "behind", -d
	}
	m.clockSkew.WithLabelValues(dir).Observe(d.Seconds())
}

// logCollector reports the log head and, for each named consumer, how far
// behind the head its checkpoint is.
type logCollector struct {
	log       provision.Log
	cps       provision.Checkpoints
	consumers func(ctx context.Context) ([]string, error)
	head      *prometheus.Desc
	lag       *prometheus.Desc
}

func newLogCollector(log provision.Log, cps provision.Checkpoints, consumers func(ctx context.Context) ([]string, error)) *logCollector {
	return &logCollector{
		log: log, cps: cps, consumers: consumers,
		head: prometheus.NewDesc("provision_log_head", "Highest position appended to the log.", nil, nil),
		lag:  prometheus.NewDesc("provision_log_lag", "Log positions a consumer has not processed yet.", []string{"consumer"}, nil),
	}
}

func (c *logCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.head; ch <- c.lag }

func (c *logCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	head, err := c.log.Head(ctx)
	if err != nil {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.head, prometheus.GaugeValue, float64(head))
	if c.cps == nil || c.consumers == nil {
		return
	}
	names, err := c.consumers(ctx)
	if err != nil {
		return
	}
	for _, name := range names {
		seq, err := c.cps.Checkpoint(ctx, name)
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(head-seq), name)
	}
}
