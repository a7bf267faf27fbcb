package csi

import (
	"context"
	"errors"
	"fmt"

	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors of the driver. Each is mapped to one gRPC code by toStatus,
// the one translation at the edge.
var (
	// ErrInvalid: a request lacks a field or carries a bad value.
	ErrInvalid = errors.New("csi: invalid request")
	// ErrNotStaged: a publish names a staging path where the volume is not
	// staged.
	ErrNotStaged = errors.New("csi: volume not staged")
	// ErrVolumeNotFound: the volume's namespace path does not exist.
	ErrVolumeNotFound = errors.New("csi: volume not found")
	// ErrConflict: the request contradicts what exists (another volume at
	// the same path, another staging of the same volume, a target
	// published with other options).
	ErrConflict = errors.New("csi: conflicts with an existing volume")
	// ErrNotManaged: DeleteVolume of a volume this driver did not provision.
	ErrNotManaged = errors.New("csi: not provisioned by this driver")
	// ErrNotReady: the driver has not connected to the cluster or
	// recovered its volumes yet.
	ErrNotReady = errors.New("csi: driver not ready")
	// ErrBroken: a volume's FUSE server is gone and not yet mounted again.
	ErrBroken = errors.New("csi: volume mount broken")
)

// codeTable maps Strata's and the driver's sentinels to gRPC codes; the first
// matching row wins.
var codeTable = []struct {
	err  error
	code codes.Code
}{
	{ErrInvalid, codes.InvalidArgument},
	{ErrNotStaged, codes.FailedPrecondition},
	{ErrVolumeNotFound, codes.NotFound},
	{ErrConflict, codes.AlreadyExists},
	{ErrNotManaged, codes.FailedPrecondition},
	{ErrNotReady, codes.Unavailable},
	{ErrBroken, codes.Unavailable},
	{ufs.ErrNotFound, codes.NotFound},
	{namespace.ErrNoMount, codes.NotFound},
	{namespace.ErrInvalidPath, codes.InvalidArgument},
	{ufs.ErrInvalidPath, codes.InvalidArgument},
	{ufs.ErrInvalidURI, codes.InvalidArgument},
	{namespace.ErrMountConflict, codes.AlreadyExists},
	{rpcpb.ErrReadOnly, codes.FailedPrecondition},
	{client.ErrNoSecrets, codes.PermissionDenied},
	{ufs.ErrPermission, codes.PermissionDenied},
	{ufs.ErrNotDir, codes.FailedPrecondition},
	{ufs.ErrNotSupported, codes.InvalidArgument},
	{ufs.ErrUnavailable, codes.Unavailable},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
	{context.Canceled, codes.Canceled},
}

// toStatus turns an error into the gRPC status the CO sees. A status error
// (from the coordinator) keeps its code.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	for _, row := range codeTable {
		if errors.Is(err, row.err) {
			return status.Error(row.code, err.Error())
		}
	}
	if st, ok := status.FromError(err); ok {
		return st.Err()
	}
	return status.Error(codes.Internal, err.Error())
}

// invalid returns an ErrInvalid error with a message.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
