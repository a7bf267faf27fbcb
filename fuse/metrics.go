package fuse

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Values of the "path" label of strata_fuse_opens_total.
const (
	viaPassthrough = "passthrough"
	viaDaemon      = "daemon"
)

// metrics are the front-end's Prometheus collectors.
type metrics struct {
	opens       *prometheus.CounterVec // path: passthrough or daemon
	readBytes   prometheus.Counter
	ptFallback  prometheus.Counter
	raWindows   prometheus.Counter
	versions    prometheus.Counter
	uploads     *prometheus.CounterVec // result: ok or error
	uploadBytes prometheus.Counter
	errors      *prometheus.CounterVec // op
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "strata", Subsystem: "fuse", Name: name, Help: help}
	}
	m := &metrics{
		opens:       prometheus.NewCounterVec(opts("opens_total", "Files opened for reading, by the path their reads take: passthrough (the kernel reads the local cache file) or daemon."), []string{"path"}),
		readBytes:   prometheus.NewCounter(opts("daemon_read_bytes_total", "Bytes returned by reads served by the daemon.")),
		ptFallback:  prometheus.NewCounter(opts("passthrough_fallback_reads_total", "Reads of passthrough handles the kernel sent to the daemon (it did not take the backing file): served from the cache file.")),
		raWindows:   prometheus.NewCounter(opts("readahead_windows_total", "Read-ahead windows fetched for sequential readers.")),
		versions:    prometheus.NewCounter(opts("superseded_inodes_total", "File inodes found to show an older version than the under-storage holds: their names were looked up again, to new inodes.")),
		uploads:     prometheus.NewCounterVec(opts("uploads_total", "Files written through to the UFS on close or fsync, by result."), []string{"result"}),
		uploadBytes: prometheus.NewCounter(opts("upload_bytes_total", "Bytes written through to the UFS.")),
		errors:      prometheus.NewCounterVec(opts("errors_total", "Operations that failed with EIO (store or network failures), by operation."), []string{"op"}),
	}
	m.opens.WithLabelValues(viaPassthrough)
	m.opens.WithLabelValues(viaDaemon)
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.opens, m.readBytes, m.ptFallback, m.raWindows, m.versions, m.uploads, m.uploadBytes, m.errors} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("fuse: metrics already registered (one FUSE mount per registry): %w", err)
			}
			return nil, fmt.Errorf("fuse: register metrics: %w", err)
		}
	}
	return m, nil
}

func counterValue(c prometheus.Counter) int64 {
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		return 0
	}
	return int64(d.GetCounter().GetValue())
}

// Stats are counters of a mount, for tests and reports.
type Stats struct {
	// PassthroughOpens and DaemonOpens count files opened for reading by
	// the path their reads take.
	PassthroughOpens, DaemonOpens int64
	// Uploads and UploadErrors count write-backs to the UFS.
	Uploads, UploadErrors int64
	// ReadAheadWindows counts windows fetched ahead of sequential readers.
	ReadAheadWindows int64
	// DaemonReadBytes counts bytes the daemon served to reads.
	DaemonReadBytes int64
	// WriteBufferBytes is the memory held now by the content of files being
	// written (their first bytes, before streaming or staging).
	WriteBufferBytes int64
	// PassthroughFallbackReads counts reads of passthrough handles that
	// reached the daemon because the kernel did not take the backing file.
	PassthroughFallbackReads int64
}

func (m *metrics) stats() Stats {
	return Stats{
		PassthroughOpens: counterValue(m.opens.WithLabelValues(viaPassthrough)),
		DaemonOpens:      counterValue(m.opens.WithLabelValues(viaDaemon)),
		Uploads:          counterValue(m.uploads.WithLabelValues("ok")),
		UploadErrors:     counterValue(m.uploads.WithLabelValues("error")),
		ReadAheadWindows: counterValue(m.raWindows),
		DaemonReadBytes:  counterValue(m.readBytes),

		PassthroughFallbackReads: counterValue(m.ptFallback),
	}
}
