package worker

import (
	"fmt"
	"sync"
	"time"

	"github.com/stratafs/strata/ufs"
)

// probeInterval is how often, while a mount's under-storage counts as down,
// one request (or one background revalidation) is let through to it to see
// whether it is back. Every other request is answered at once: from the
// cache (an expired entry, a cached page) or with ufs.ErrUnavailable, so that
// the client moves on to the next owner instead of waiting for the UFS
// client's retries again.
const probeInterval = 2 * time.Second

// breaker remembers, per mount, that its under-storage does not answer (a
// circuit breaker): it opens on the first request that failed for the
// network (unreachable), and closes on the first one that succeeds. While it
// is open, at most one probe per probeInterval reaches the UFS. Safe for
// concurrent use.
type breaker struct {
	now func() time.Time

	mu     sync.Mutex
	mounts map[string]*mountHealth
}

type mountHealth struct {
	since     time.Time // down since
	lastErr   error
	nextProbe time.Time
	probing   bool
}

func newBreaker() *breaker {
	return &breaker{now: time.Now, mounts: map[string]*mountHealth{}}
}

// down reports whether the mount's UFS counts as unreachable.
func (b *breaker) down(mountID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.mounts[mountID] != nil
}

// probe reports whether a request may try the UFS of the mount now: always
// while it is up; while it is down, for one caller per probeInterval (which
// must then call done with its outcome).
func (b *breaker) probe(mountID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.mounts[mountID]
	if h == nil {
		return true
	}
	now := b.now()
	if h.probing || now.Before(h.nextProbe) {
		return false
	}
	h.probing = true
	h.nextProbe = now.Add(probeInterval)
	return true
}

// done records the outcome of a UFS request of the mount: err nil (or an
// answer such as "not found") closes the breaker, an unreachable error opens
// it. It also ends the caller's probe, if it held one.
func (b *breaker) done(mountID string, err error, isUnreachable bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.mounts[mountID]
	if !isUnreachable {
		delete(b.mounts, mountID)
		return
	}
	now := b.now()
	if h == nil {
		h = &mountHealth{since: now}
		b.mounts[mountID] = h
	}
	h.lastErr = err
	h.probing = false
	h.nextProbe = now.Add(probeInterval)
}

// release ends a probe that did not reach the UFS (the caller gave up).
func (b *breaker) release(mountID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h := b.mounts[mountID]; h != nil {
		h.probing = false
	}
}

// unavailable is the error of a request refused because the mount's UFS is
// down: it wraps ufs.ErrUnavailable, so a client tries the next owner.
func (b *breaker) unavailable(mountID, what string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.mounts[mountID]
	if h == nil {
		return fmt.Errorf("%s: %w", what, ufs.ErrUnavailable)
	}
	return fmt.Errorf("%s: not cached on this worker, and the under-storage has not answered since %s (last: %v): %w",
		what, h.since.UTC().Format(time.RFC3339), h.lastErr, ufs.ErrUnavailable)
}
