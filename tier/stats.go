package tier

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TierStats reports one tier.
type TierStats struct {
	Name, Medium, Policy string
	// Capacity and Used in bytes (overhead included, see Usage); Pages and Files
	// cached.
	Capacity, Used, Pages, Files int64
	// Hits and Misses count Gets that found / did not find the page in this tier
	// (a Get that hits in a lower tier is a miss in the tiers above it).
	Hits, Misses uint64
	// HitRatio is Hits / (Hits + Misses), 0 without lookups.
	HitRatio float64
	// Evictions: pages evicted from this tier; Demotions: of those, moved to the
	// next tier; Promotions: pages moved from this tier to the top tier.
	Evictions, Demotions, Promotions uint64
	// ChecksumFailures: pages dropped from this tier for a CRC mismatch (a
	// disk tier's over its directories' life: they survive restarts; a
	// memory tier's since the process started); ReadErrors: pages dropped
	// for an I/O error; PromotionsDropped: promotions not done because the
	// queue was full.
	ChecksumFailures, ReadErrors, PromotionsDropped uint64
	// TruncatedFiles: data files of a disk tier found shorter than their
	// sidecar says (over the directories' life).
	TruncatedFiles uint64
	// Dirs reports each directory of a disk tier.
	Dirs []DirStats
	// Degraded is true while a directory of the tier is skipped after a
	// failed write (Dirs says which and why): the tier holds less than its
	// capacity says, and what it cannot take goes to the next tier or is not
	// cached.
	Degraded bool
}

// DirStats reports one directory of a disk tier.
type DirStats struct {
	Path                         string
	Capacity, Used, Pages, Files int64
	// Healthy is false while the directory is skipped after a write error;
	// UnhealthyUntil says until when. WriteErrors counts failed writes.
	Healthy        bool
	UnhealthyUntil time.Time
	WriteErrors    uint64
	// NoSpaceErrors counts the failed writes that were ENOSPC or EDQUOT:
	// the file system under the directory is full (its quota may be larger
	// than the file system).
	NoSpaceErrors uint64
	// LastError is the last failed write ("" without one), at LastErrorAt;
	// NoSpace says whether it was ENOSPC or EDQUOT.
	LastError   string
	LastErrorAt time.Time
	NoSpace     bool
	// ChecksumFailures and TruncatedFiles are the directory's lifetime
	// integrity counters (DiskStore.ChecksumFailures); ScrubbedPages counts
	// the pages the background scrub verified since the cache opened, and
	// Scrubbed says it went through every page found at open.
	ChecksumFailures, TruncatedFiles uint64
	ScrubbedPages                    int64
	Scrubbed                         bool
}

// Stats reports every tier, fastest first. Safe for concurrent use.
func (c *Cache) Stats() []TierStats {
	out := make([]TierStats, 0, len(c.tiers))
	for _, t := range c.tiers {
		ts := TierStats{
			Name: t.cfg.Name, Medium: t.cfg.Medium, Policy: t.cfg.Policy,
			Hits: t.hits.Load(), Misses: t.misses.Load(),
			Evictions: t.evictions.Load(), Demotions: t.demotions.Load(), Promotions: t.promotions.Load(),
			ChecksumFailures: t.checksumFailures.Load(), ReadErrors: t.readErrors.Load(),
			PromotionsDropped: t.promoteDropped.Load(),
		}
		if n := ts.Hits + ts.Misses; n > 0 {
			ts.HitRatio = float64(ts.Hits) / float64(n)
		}
		for _, s := range t.spaces {
			u := s.store.Usage()
			ts.Capacity += u.Capacity
			ts.Used += u.Used
			ts.Pages += u.Pages
			ts.Files += u.Files
			if s.disk != nil {
				until := s.disk.unhealthyUntil()
				ds := DirStats{
					Path: s.name, Capacity: u.Capacity, Used: u.Used, Pages: u.Pages, Files: u.Files,
					Healthy: s.disk.Healthy(), UnhealthyUntil: until, WriteErrors: s.disk.writeErrors.Load(),
					NoSpaceErrors:    s.disk.noSpaceErrors.Load(),
					ChecksumFailures: s.disk.ChecksumFailures(), TruncatedFiles: s.disk.TruncatedFiles(),
					ScrubbedPages: s.disk.scrubbed.Load(), Scrubbed: s.disk.scrubDone.Load(),
				}
				ts.ChecksumFailures += ds.ChecksumFailures
				ts.TruncatedFiles += ds.TruncatedFiles
				if we := s.disk.lastErr.Load(); we != nil {
					ds.LastError, ds.LastErrorAt, ds.NoSpace = we.err.Error(), we.at, we.noSpace
				}
				ts.Degraded = ts.Degraded || !ds.Healthy
				ts.Dirs = append(ts.Dirs, ds)
			}
		}
		out = append(out, ts)
	}
	return out
}

// collector exports Stats as Prometheus metrics.
type collector struct {
	c                                                *Cache
	capacity, used, pages, files                     *prometheus.Desc
	hits, misses, evictions, demotions, promotions   *prometheus.Desc
	checksum, readErrors, promoDropped               *prometheus.Desc
	dirHealthy, dirWriteErrors, dirCapacity, dirUsed *prometheus.Desc
	dirNoSpace, degraded, truncated                  *prometheus.Desc
}

func newCollector(c *Cache) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("strata_tier_"+name, help, labels, nil)
	}
	return &collector{
		c:              c,
		capacity:       d("capacity_bytes", "Byte budget of the tier.", "tier"),
		used:           d("used_bytes", "Bytes used in the tier, overhead included.", "tier"),
		pages:          d("pages", "Pages cached in the tier.", "tier"),
		files:          d("files", "Files with pages in the tier.", "tier"),
		hits:           d("hits_total", "Gets served by the tier.", "tier"),
		misses:         d("misses_total", "Gets that did not find the page in the tier.", "tier"),
		evictions:      d("evictions_total", "Pages evicted from the tier.", "tier"),
		demotions:      d("demotions_total", "Evicted pages moved to the next tier.", "tier"),
		promotions:     d("promotions_total", "Pages moved from the tier to the top tier.", "tier"),
		checksum:       d("checksum_failures_total", "Pages dropped for a CRC32C mismatch (a disk tier's over its directories' life, kept across restarts).", "tier"),
		readErrors:     d("read_errors_total", "Pages dropped for a read error.", "tier"),
		promoDropped:   d("promotions_dropped_total", "Promotions skipped because the queue was full.", "tier"),
		dirHealthy:     d("dir_healthy", "1 when the directory takes writes, 0 while it is skipped after an error.", "tier", "dir"),
		dirWriteErrors: d("dir_write_errors_total", "Failed writes (ENOSPC, EIO, ...) in the directory.", "tier", "dir"),
		dirCapacity:    d("dir_capacity_bytes", "Quota of the directory.", "tier", "dir"),
		dirUsed:        d("dir_used_bytes", "Bytes used in the directory, overhead included.", "tier", "dir"),
		dirNoSpace:     d("dir_no_space_errors_total", "Failed writes in the directory that were ENOSPC or EDQUOT (file system full).", "tier", "dir"),
		degraded:       d("degraded", "1 while a directory of the tier is skipped after a failed write.", "tier"),
		truncated:      d("truncated_files_total", "Data files of the tier found shorter than their sidecar says (over the directories' life).", "tier"),
	}
}

// Describe implements prometheus.Collector.
func (m *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.capacity, m.used, m.pages, m.files, m.hits, m.misses, m.evictions,
		m.demotions, m.promotions, m.checksum, m.readErrors, m.promoDropped, m.dirHealthy, m.dirWriteErrors,
		m.dirCapacity, m.dirUsed, m.dirNoSpace, m.degraded, m.truncated} {
		ch <- d
	}
}

// Collect implements prometheus.Collector; it reads Stats.
func (m *collector) Collect(ch chan<- prometheus.Metric) {
	g, k := prometheus.GaugeValue, prometheus.CounterValue
	for _, t := range m.c.Stats() {
		ch <- prometheus.MustNewConstMetric(m.capacity, g, float64(t.Capacity), t.Name)
		ch <- prometheus.MustNewConstMetric(m.used, g, float64(t.Used), t.Name)
		ch <- prometheus.MustNewConstMetric(m.pages, g, float64(t.Pages), t.Name)
		ch <- prometheus.MustNewConstMetric(m.files, g, float64(t.Files), t.Name)
		ch <- prometheus.MustNewConstMetric(m.hits, k, float64(t.Hits), t.Name)
		ch <- prometheus.MustNewConstMetric(m.misses, k, float64(t.Misses), t.Name)
		ch <- prometheus.MustNewConstMetric(m.evictions, k, float64(t.Evictions), t.Name)
		ch <- prometheus.MustNewConstMetric(m.demotions, k, float64(t.Demotions), t.Name)
		ch <- prometheus.MustNewConstMetric(m.promotions, k, float64(t.Promotions), t.Name)
		ch <- prometheus.MustNewConstMetric(m.checksum, k, float64(t.ChecksumFailures), t.Name)
		ch <- prometheus.MustNewConstMetric(m.readErrors, k, float64(t.ReadErrors), t.Name)
		ch <- prometheus.MustNewConstMetric(m.promoDropped, k, float64(t.PromotionsDropped), t.Name)
		deg := 0.0
		if t.Degraded {
			deg = 1
		}
		ch <- prometheus.MustNewConstMetric(m.degraded, g, deg, t.Name)
		ch <- prometheus.MustNewConstMetric(m.truncated, k, float64(t.TruncatedFiles), t.Name)
		for _, d := range t.Dirs {
			h := 0.0
			if d.Healthy {
				h = 1
			}
			ch <- prometheus.MustNewConstMetric(m.dirHealthy, g, h, t.Name, d.Path)
			ch <- prometheus.MustNewConstMetric(m.dirWriteErrors, k, float64(d.WriteErrors), t.Name, d.Path)
			ch <- prometheus.MustNewConstMetric(m.dirCapacity, g, float64(d.Capacity), t.Name, d.Path)
			ch <- prometheus.MustNewConstMetric(m.dirUsed, g, float64(d.Used), t.Name, d.Path)
			ch <- prometheus.MustNewConstMetric(m.dirNoSpace, k, float64(d.NoSpaceErrors), t.Name, d.Path)
		}
	}
}
