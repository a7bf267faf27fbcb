package worker

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type metrics struct {
	pageHits, pageMisses                  prometheus.Counter
	ufsFetches, ufsBytes                  prometheus.Counter
	servedBytes                           prometheus.Counter
	metaHits, metaMisses                  prometheus.Counter
	fillErrors, abortedReads, deniedReads prometheus.Counter
	metaStale                             prometheus.Counter
	loadFetched, loadCached               prometheus.Counter
	fastFails, metaWriteErrors            prometheus.Counter
	metaRestored                          prometheus.Gauge
	fetchSeconds                          prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "strata", Subsystem: "worker", Name: name, Help: help})
	}
	m := &metrics{
		pageHits:     c("page_hits_total", "Pages served from the cache."),
		pageMisses:   c("page_misses_total", "Pages that had to be fetched from the UFS."),
		ufsFetches:   c("ufs_fetches_total", "Ranged reads issued to the UFS."),
		ufsBytes:     c("ufs_read_bytes_total", "Bytes read from the UFS."),
		servedBytes:  c("served_bytes_total", "Bytes served to clients over the data path."),
		metaHits:     c("metadata_cache_hits_total", "Stat and list requests answered from the metadata cache."),
		metaMisses:   c("metadata_cache_misses_total", "Stat and list requests sent to the UFS."),
		fillErrors:   c("fill_errors_total", "UFS fetches that failed."),
		abortedReads: c("aborted_reads_total", "Data responses cut short by an error after the headers were sent."),
		deniedReads:  c("denied_reads_total", "Data requests refused for a missing, expired or forged data token."),
		metaStale:    c("metadata_stale_served_total", "Stat and list requests answered with an expired entry because the UFS was unreachable."),
		loadFetched:  c("load_fetched_bytes_total", "Bytes load tasks read from the UFS."),
		loadCached:   c("load_cached_bytes_total", "Bytes load tasks found already cached."),
		fastFails: c("ufs_down_fast_failures_total",
			"Requests that missed the cache and were refused at once because their mount's under-storage does not answer (the client asks the next owner)."),
		metaWriteErrors: c("metadata_store_write_errors_total", "Failed writes of the on-disk metadata store."),
		metaRestored: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "strata", Subsystem: "worker", Name: "metadata_restored_entries",
			Help: "Stats and listings the worker got back from its on-disk metadata store when it started."}),
		fetchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "strata", Subsystem: "worker", Name: "ufs_fetch_seconds",
			Help: "Latency of one ranged UFS fetch.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	for _, col := range []prometheus.Collector{m.pageHits, m.pageMisses, m.ufsFetches, m.ufsBytes, m.servedBytes, m.metaHits, m.metaMisses, m.fillErrors, m.abortedReads, m.deniedReads, m.metaStale, m.loadFetched, m.loadCached, m.fastFails, m.metaWriteErrors, m.metaRestored, m.fetchSeconds} {
		_ = reg.Register(col)
	}
	return m
}

func (m *metrics) get(c prometheus.Counter) int64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		return 0
	}
	return int64(d.GetCounter().GetValue())
}
