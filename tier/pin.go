package tier

import (
	"strings"
	"sync"
	"time"
)

// pinTable holds the pinned namespace prefixes and their expiry (zero: none).
// Safe for concurrent use.
type pinTable struct {
	mu sync.RWMutex
	m  map[string]time.Time
}

// normPrefix cleans a pin or free prefix: a trailing slash is dropped ("/a/" is
// "/a"); "/" stays.
func normPrefix(p string) string {
	for len(p) > 1 && strings.HasSuffix(p, "/") {
		p = p[:len(p)-1]
	}
	return p
}

// under reports whether path equals prefix or lies below it.
func under(path, prefix string) bool {
	if prefix == "/" {
		return strings.HasPrefix(path, "/")
	}
	return path == prefix || (strings.HasPrefix(path, prefix) && path[len(prefix)] == '/')
}

func (p *pinTable) set(prefix string, until time.Time) {
	p.mu.Lock()
	if p.m == nil {
		p.m = map[string]time.Time{}
	}
	p.m[prefix] = until
	p.mu.Unlock()
}

func (p *pinTable) remove(prefix string) bool {
	p.mu.Lock()
	_, ok := p.m[prefix]
	delete(p.m, prefix)
	p.mu.Unlock()
	return ok
}

// expire drops the pins that lapsed by now and returns how many.
func (p *pinTable) expire(now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for k, until := range p.m {
		if !until.IsZero() && !now.Before(until) {
			delete(p.m, k)
			n++
		}
	}
	return n
}

// pinned reports whether path is at or under a pin that holds at now. It looks
// up the path and each of its ancestors: O(depth) map lookups.
func (p *pinTable) pinned(path string, now time.Time) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if len(p.m) == 0 {
		return false
	}
	q := path
	for {
		if until, ok := p.m[q]; ok && (until.IsZero() || now.Before(until)) {
			return true
		}
		if q == "/" || q == "" {
			return false
		}
		i := strings.LastIndexByte(q, '/')
		if i <= 0 {
			q = "/"
		} else {
			q = q[:i]
		}
	}
}

// list returns a copy of the pins.
func (p *pinTable) list() map[string]time.Time {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make(map[string]time.Time, len(p.m))
	for k, v := range p.m {
		out[k] = v
	}
	return out
}
