package worker

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stratafs/strata/cluster"
)

// healthPoll is how often the worker checks its cache directories and
// publishes the degraded ones in its registration (strata report shows them).
const healthPoll = 2 * time.Second

// degradedDirs lists the cache directories that are out of use for writes
// now.
func (s *Server) degradedDirs() []cluster.DirHealth {
	var out []cluster.DirHealth
	for _, t := range s.cache.Stats() {
		for _, d := range t.Dirs {
			if d.Healthy {
				continue
			}
			out = append(out, cluster.DirHealth{Tier: t.Name, Dir: d.Path, NoSpace: d.NoSpace, Error: d.LastError,
				Since: d.LastErrorAt.UTC(), Until: d.UnhealthyUntil.UTC()})
		}
	}
	return out
}

// watchHealth publishes the degraded cache directories in the worker's
// registration whenever the set changes.
func (s *Server) watchHealth(ctx context.Context) {
	t := time.NewTicker(healthPoll)
	defer t.Stop()
	for {
		s.publishHealth(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) publishHealth(ctx context.Context) {
	deg := s.degradedDirs()
	s.infoMu.Lock()
	same := slices.EqualFunc(s.info.Degraded, deg, func(a, b cluster.DirHealth) bool {
		return a.Tier == b.Tier && a.Dir == b.Dir && a.Since.Equal(b.Since) && a.Until.Equal(b.Until)
	})
	s.info.Degraded = deg
	info := s.info
	s.infoMu.Unlock()
	if same || s.reg == nil {
		return
	}
	if err := s.reg.Update(ctx, info); err != nil {
		s.log.Warn("publish cache health", "err", err)
		return
	}
	for _, d := range deg {
		s.log.Warn("cache directory degraded", "detail", d.String())
	}
	if len(deg) == 0 {
		s.log.Info("every cache directory takes writes again")
	}
}

// cacheTrouble explains why the cache may not have kept a page: its
// degraded directories, or the last failed Put, or "" when it knows of no
// trouble.
func (s *Server) cacheTrouble() string {
	var parts []string
	for _, d := range s.degradedDirs() {
		parts = append(parts, d.String())
	}
	if len(parts) == 0 {
		if e, ok := s.lastPutErr.Load().(putError); ok && time.Since(e.at) < time.Minute {
			parts = append(parts, fmt.Sprintf("last cache write failed %s ago: %s", time.Since(e.at).Round(time.Second), e.msg))
		}
	}
	return strings.Join(parts, "; ")
}

// putError is the last failed cache Put of a fill.
type putError struct {
	msg string
	at  time.Time
}
