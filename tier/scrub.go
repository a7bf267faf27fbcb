package tier

import (
	"context"
	"errors"
	"time"
)

// scrubRate bounds the reads of the background scrub (bytes per second, all
// directories together), so that it does not compete with serving.
const scrubRate = 256 << 20

// scrubJob is what the scrub of one directory verifies: the files recovered
// when the cache opened.
type scrubJob struct {
	s     *space
	files []*diskFile
}

// scrubJobs lists the files every disk directory recovered.
func (c *Cache) scrubJobs() []scrubJob {
	var jobs []scrubJob
	for _, t := range c.tiers {
		for _, s := range t.spaces {
			if s.disk != nil {
				jobs = append(jobs, scrubJob{s: s, files: s.disk.allFiles()})
			}
		}
	}
	return jobs
}

// scrub verifies the CRC32C of every page the disk tiers recovered, in the
// background after open, at most scrubRate bytes per second: a page that
// was corrupted while the process was down is found and dropped (and
// counted) without waiting for a read. Files being changed at a crash were
// already verified by recovery; every read verifies its page anyway. It ends
// early when the cache closes.
func (c *Cache) scrub(jobs []scrubJob) {
	defer c.wg.Done()
	defer close(c.scrubbed)
	ctx := context.Background()
	var read int64
	start := time.Now()
	for _, j := range jobs {
		s, d := j.s, j.s.disk
		dirStart := time.Now()
		var pages, bad int64
		for _, f := range j.files {
			f.mu.RLock()
			if f.removed {
				f.mu.RUnlock()
				continue
			}
			idx := f.presentPages()
			f.mu.RUnlock()
			for _, i := range idx {
				select {
				case <-c.stop:
					return
				default:
				}
				key := PageKey{File: f.id, Index: i}
				h, err := s.store.Get(ctx, key)
				switch {
				case err == nil:
					read += int64(len(h.Bytes()))
					_ = h.Close()
				case errors.Is(err, ErrChecksum):
					bad++
					c.log.Warn("page failed its checksum in the startup scrub; dropped", "tier", s.t.cfg.Name, "store", s.name, "page", key.String())
					c.removeFrom(s, key)
				case errors.Is(err, ErrNotCached):
					continue // evicted or freed meanwhile
				default:
					s.t.readErrors.Add(1)
					c.log.Warn("page read failed in the startup scrub; dropped", "tier", s.t.cfg.Name, "store", s.name, "page", key.String(), "err", err)
					c.removeFrom(s, key)
				}
				pages++
				d.scrubbed.Add(1)
				if ahead := time.Duration(float64(read)/scrubRate*float64(time.Second)) - time.Since(start); ahead > 10*time.Millisecond {
					select {
					case <-c.stop:
						return
					case <-time.After(ahead):
					}
				}
			}
		}
		d.scrubDone.Store(true)
		if pages > 0 {
			c.log.Info("disk tier directory scrubbed", "tier", s.t.cfg.Name, "dir", s.name, "pages", pages, "bad_pages", bad,
				"took", time.Since(dirStart).Round(time.Millisecond))
		}
	}
}
