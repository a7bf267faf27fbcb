package s3api

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the S3 front-end's Prometheus series.
type metrics struct {
	requests *prometheus.CounterVec   // operation, status
	seconds  *prometheus.HistogramVec // operation
	bytesIn  *prometheus.CounterVec   // operation
	bytesOut *prometheus.CounterVec   // operation
	inflight prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "s3", Name: "requests_total",
			Help: "S3 API requests by operation and HTTP status.",
		}, []string{"operation", "status"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "strata", Subsystem: "s3", Name: "request_seconds",
			Help:    "S3 API request duration by operation, until the response is written.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"operation"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "s3", Name: "received_bytes_total",
			Help: "Request body bytes received by the S3 API, by operation.",
		}, []string{"operation"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "s3", Name: "sent_bytes_total",
			Help: "Response body bytes sent by the S3 API, by operation.",
		}, []string{"operation"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "strata", Subsystem: "s3", Name: "inflight_requests",
			Help: "S3 API requests being served.",
		}),
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	for _, c := range []prometheus.Collector{m.requests, m.seconds, m.bytesIn, m.bytesOut, m.inflight} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observe(op string, status int, seconds float64, in, out int64) {
	m.requests.WithLabelValues(op, strconv.Itoa(status)).Inc()
	m.seconds.WithLabelValues(op).Observe(seconds)
	if in > 0 {
		m.bytesIn.WithLabelValues(op).Add(float64(in))
	}
	if out > 0 {
		m.bytesOut.WithLabelValues(op).Add(float64(out))
	}
}
