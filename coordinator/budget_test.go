package coordinator

import (
	"context"
	"sync"
	"testing"
	"time"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestByteBudget(t *testing.T) {
	clk := &testClock{t: time.Unix(1000, 0)}
	b := newByteBudget(1<<20, clk.now) // 1 MiB/s, burst 0.1 s
	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := b.take(canceled, 1<<20); err == nil {
		t.Fatal("1 MiB passed at once from an empty bucket")
	}
	clk.advance(time.Second)
	if err := b.take(canceled, 1<<20); err != nil {
		t.Fatalf("1 MiB after a second at 1 MiB/s: %v", err)
	}
	clk.advance(500 * time.Millisecond)
	if err := b.take(canceled, 1<<20); err == nil {
		t.Fatal("1 MiB passed after half a second")
	}
	b.giveBack(1 << 19) // half of the last task was cached
	if err := b.take(canceled, 1<<20); err != nil {
		t.Fatalf("half a second plus a give-back of half a MiB: %v", err)
	}
	// Idle time accumulates at most a burst (or one task's bytes).
	clk.advance(time.Hour)
	if err := b.take(canceled, 2<<20); err != nil {
		t.Fatal(err)
	}
	if err := b.take(canceled, 1); err == nil {
		t.Fatal("an hour of idle time let more than one task through")
	}
	clk.advance(100 * time.Millisecond)
	if err := b.take(canceled, 100<<10); err != nil {
		t.Fatalf("a burst after 0.1 s: %v", err)
	}
	var unlimited *byteBudget
	if err := unlimited.take(canceled, 1<<40); err != nil {
		t.Fatal(err)
	}
	if err := newByteBudget(0, clk.now).take(canceled, 1<<40); err != nil {
		t.Fatal(err)
	}
}
