package hdfsapi

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the WebHDFS front-end's Prometheus series.
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
			Namespace: "strata", Subsystem: "webhdfs", Name: "requests_total",
			Help: "WebHDFS requests by operation and HTTP status.",
		}, []string{"operation", "status"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "strata", Subsystem: "webhdfs", Name: "request_seconds",
			Help:    "WebHDFS request duration by operation, until the response is written.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
		}, []string{"operation"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "webhdfs", Name: "received_bytes_total",
			Help: "Request body bytes received by WebHDFS, by operation.",
		}, []string{"operation"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "strata", Subsystem: "webhdfs", Name: "sent_bytes_total",
			Help: "Response body bytes sent by WebHDFS, by operation.",
		}, []string{"operation"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "strata", Subsystem: "webhdfs", Name: "inflight_requests",
			Help: "WebHDFS requests being served.",
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

// observe records one request. op is a known operation name or "unknown",
// so the label set stays bounded.
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
