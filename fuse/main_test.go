package fuse

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind (read-ahead
// fetches, background uploads).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
