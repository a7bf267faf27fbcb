package client

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stratafs/strata/ufs"
)

// TestRetriable: transport failures and unavailability move a read to the
// next owner (then the UFS); answers about the file itself do not.
func TestRetriable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{fmt.Errorf("worker w1: %w: connection refused", ufs.ErrUnavailable), true},
		{errors.New("read tcp: connection reset by peer"), true},
		{context.DeadlineExceeded, true},
		{fmt.Errorf("x: %w", ufs.ErrNotFound), false},
		{fmt.Errorf("x: %w", ufs.ErrChanged), false},
		{fmt.Errorf("x: %w", ufs.ErrPermission), false},
		{fmt.Errorf("x: %w", ufs.ErrIsDir), false},
		{fmt.Errorf("x: %w", ufs.ErrInvalidPath), false},
		{context.Canceled, false},
	} {
		if got := retriable(tc.err); got != tc.want {
			t.Errorf("retriable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
