package fuse

import (
	"context"
	"errors"
	"syscall"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
)

// errnoTable is the one translation of Strata's sentinel errors into the
// errnos applications see. The first matching row wins.
var errnoTable = []struct {
	err   error
	errno syscall.Errno
}{
	{ufs.ErrNotFound, syscall.ENOENT},
	{namespace.ErrNoMount, syscall.ENOENT},
	{ufs.ErrExist, syscall.EEXIST},
	{ufs.ErrNotDir, syscall.ENOTDIR},
	{ufs.ErrIsDir, syscall.EISDIR},
	{ufs.ErrNotEmpty, syscall.ENOTEMPTY},
	{rpcpb.ErrReadOnly, syscall.EROFS},
	{ufs.ErrPermission, syscall.EACCES},
	{ufs.ErrNotSupported, syscall.ENOTSUP},
	// The file changed in the UFS since it was opened: reopen it.
	{ufs.ErrChanged, syscall.ESTALE},
	{namespace.ErrInvalidPath, syscall.EINVAL},
	{ufs.ErrInvalidPath, syscall.EINVAL},
	{ufs.ErrInvalidURI, syscall.EINVAL},
	// The store (and every fallback) could not be reached.
	{ufs.ErrUnavailable, syscall.EIO},
	{context.Canceled, syscall.EINTR},
	{context.DeadlineExceeded, syscall.ETIMEDOUT},
}

// toErrno translates an error of the client, the UFS or the local staging
// disk into the errno returned to the kernel: the sentinel table first, then a
// syscall.Errno found in the chain (ENOSPC from the staging disk, ...), and
// EIO for anything else. nil is 0.
func toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	for _, row := range errnoTable {
		if errors.Is(err, row.err) {
			return row.errno
		}
	}
	var errno syscall.Errno
	if errors.As(err, &errno) && errno != 0 {
		return errno
	}
	return syscall.EIO
}

// uninterrupted detaches a FUSE request's context from the kernel's
// interrupts. A signal to the calling process (SIGCHLD from a DataLoader
// worker, the Go runtime's preemption signal, ...) interrupts its request;
// honouring it would fail stat, open or read with EINTR, which most
// programs never expect. Requests are bounded by client.request_timeout
// instead, and a process killed meanwhile stops waiting anyway (libfuse
// behaves the same unless mounted with -o intr).
func uninterrupted(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }
