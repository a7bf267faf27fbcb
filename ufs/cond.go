package ufs

import (
	"context"
	"errors"
	"io"
)

// ErrPrecondition: the condition of a conditional write (Condition) did not
// hold, so nothing was written. When Condition.Match named a file that does
// not exist, the error wraps ErrNotFound too.
var ErrPrecondition = errors.New("ufs: precondition failed")

// Condition is a precondition on the file a write replaces. The store checks
// it atomically with the write, so it holds against every writer of the
// under-storage, not only against Strata's. The zero Condition is no
// condition (a plain Put).
type Condition struct {
	// NoneMatch makes the write succeed only if no file exists at the path
	// (HTTP If-None-Match: *): create-only.
	NoneMatch bool
	// Match, when not empty, is a FileInfo.ETag: the write succeeds only if
	// the file at the path is that version (HTTP If-Match).
	Match string
}

// IsZero reports whether c sets no condition.
func (c Condition) IsZero() bool { return !c.NoneMatch && c.Match == "" }

// ConditionalPutter is implemented by stores that can make a write depend on
// the version it replaces, with the store's own conditional write (S3
// If-None-Match/If-Match, GCS generation preconditions, Azure ETag access
// conditions, link/rename under a lock on file systems).
type ConditionalPutter interface {
	// PutIf is Put when cond holds at the moment the new version becomes
	// visible. When it does not, nothing is written and PutIf returns
	// ErrPrecondition (wrapping ErrNotFound as well when cond.Match names a
	// file that does not exist). A Condition with both NoneMatch and Match
	// never holds. Returns Put's errors otherwise.
	PutIf(ctx context.Context, path string, r io.Reader, size int64, cond Condition) (FileInfo, error)
}
