package coordinator

import (
	"context"
	"sync"
	"time"
)

// byteBudget caps a job's UFS read rate: a token bucket of bytes, refilled
// at rate per second. A task waits until the bucket holds its bytes, then
// takes them; the bucket holds at most burst bytes, or one task's bytes for a
// task larger than that, so over any interval of t seconds no more than
// rate·t + max(burst, one task) bytes pass. Bytes a task did not read from
// the UFS (already cached) are given back. Safe for concurrent use.
type byteBudget struct {
	rate  float64 // bytes per second; <= 0: unlimited
	burst float64
	now   func() time.Time

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newByteBudget(rate int64, now func() time.Time) *byteBudget {
	// A tenth of a second of tokens: small against the 10% accuracy the
	// rate is held to over a run of seconds.
	return &byteBudget{rate: float64(rate), burst: float64(rate) / 10, now: now, last: now()}
}

// refill adds the tokens earned since the last refill, up to limit.
func (b *byteBudget) refill(now time.Time, limit float64) {
	if b.tokens < limit {
		b.tokens = min(limit, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
}

// take waits until the bucket holds n bytes, then takes them. Returns ctx's
// error.
func (b *byteBudget) take(ctx context.Context, n int64) error {
	if b == nil || b.rate <= 0 || n <= 0 {
		return nil
	}
	need := float64(n)
	for {
		b.mu.Lock()
		b.refill(b.now(), max(b.burst, need))
		if b.tokens >= need {
			b.tokens -= need
			b.mu.Unlock()
			return nil
		}
		wait := time.Duration((need - b.tokens) / b.rate * float64(time.Second))
		b.mu.Unlock()
		t := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// giveBack returns n bytes that were taken but not read from the UFS.
func (b *byteBudget) giveBack(n int64) {
	if b == nil || b.rate <= 0 || n <= 0 {
		return
	}
	b.mu.Lock()
	b.refill(b.now(), b.burst)
	b.tokens += float64(n) // never more than was taken: no cap needed
	b.mu.Unlock()
}
