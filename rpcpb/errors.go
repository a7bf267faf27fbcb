package rpcpb

import (
	"context"
	"errors"
	"net/http"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/ufs"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain tags Strata's gRPC error details.
const ErrorDomain = "strata.io"

// ErrReadOnly is returned for a write to a read-only mount.
var ErrReadOnly = errors.New("strata: mount is read-only")

// ErrInvalidArgument is returned for a malformed request argument that is
// not a path or URI: a bad glob, a negative bandwidth, an unknown job id form.
var ErrInvalidArgument = errors.New("invalid argument")

// errorTable is the one mapping between sentinel errors and wire statuses. The
// first matching row wins, so more specific sentinels come first.
var errorTable = []struct {
	err    error
	reason string
	code   codes.Code
	http   int
}{
	{ufs.ErrChanged, "CHANGED", codes.Aborted, http.StatusPreconditionFailed},
	{ufs.ErrNotFound, "NOT_FOUND", codes.NotFound, http.StatusNotFound},
	{namespace.ErrNoMount, "NO_MOUNT", codes.NotFound, http.StatusNotFound},
	{namespace.ErrNotMounted, "NOT_MOUNTED", codes.NotFound, http.StatusNotFound},
	{ufs.ErrExist, "EXIST", codes.AlreadyExists, http.StatusConflict},
	{namespace.ErrMountConflict, "MOUNT_CONFLICT", codes.AlreadyExists, http.StatusConflict},
	{ufs.ErrNotDir, "NOT_DIR", codes.FailedPrecondition, http.StatusConflict},
	{ufs.ErrIsDir, "IS_DIR", codes.FailedPrecondition, http.StatusConflict},
	{ufs.ErrNotEmpty, "NOT_EMPTY", codes.FailedPrecondition, http.StatusConflict},
	{ErrReadOnly, "READ_ONLY", codes.PermissionDenied, http.StatusForbidden},
	{ufs.ErrPermission, "PERMISSION", codes.PermissionDenied, http.StatusForbidden},
	{ufs.ErrNotSupported, "NOT_SUPPORTED", codes.Unimplemented, http.StatusNotImplemented},
	{ErrInvalidArgument, "INVALID_ARGUMENT", codes.InvalidArgument, http.StatusBadRequest},
	{ufs.ErrInvalidURI, "INVALID_URI", codes.InvalidArgument, http.StatusBadRequest},
	{ufs.ErrInvalidPath, "INVALID_UFS_PATH", codes.InvalidArgument, http.StatusBadRequest},
	{namespace.ErrInvalidPath, "INVALID_PATH", codes.InvalidArgument, http.StatusBadRequest},
	{ufs.ErrUnavailable, "UNAVAILABLE", codes.Unavailable, http.StatusServiceUnavailable},
	{context.DeadlineExceeded, "DEADLINE", codes.DeadlineExceeded, http.StatusGatewayTimeout},
	{context.Canceled, "CANCELED", codes.Canceled, 499},
}

// RemoteError is an error that crossed the wire: its text is the remote
// error's, and errors.Is matches the sentinel it was mapped from.
type RemoteError struct {
	Sentinel error
	Msg      string
}

// Error returns the remote message.
func (e *RemoteError) Error() string { return e.Msg }

// Unwrap exposes the sentinel to errors.Is.
func (e *RemoteError) Unwrap() error { return e.Sentinel }

// Reason returns the wire reason of err ("NOT_FOUND", ...), or "INTERNAL".
func Reason(err error) string {
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			return row.reason
		}
	}
	return "INTERNAL"
}

func byReason(reason string) error {
	for _, row := range errorTable {
		if row.reason == reason {
			return row.err
		}
	}
	return nil
}

// ToStatus turns err into a gRPC status error that FromStatus maps back.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	reason := Reason(err)
	for _, row := range errorTable {
		if row.reason == reason {
			code = row.code
			break
		}
	}
	st := status.New(code, err.Error())
	if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: ErrorDomain}); derr == nil {
		st = d
	}
	return st.Err()
}

// FromStatus turns a gRPC error back into one that matches Strata's sentinels.
// Transport failures (no status from a Strata server) map to ufs.ErrUnavailable.
func FromStatus(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.Domain == ErrorDomain {
			if s := byReason(info.Reason); s != nil {
				return &RemoteError{Sentinel: s, Msg: st.Message()}
			}
			return errors.New(st.Message())
		}
	}
	switch st.Code() {
	case codes.Unavailable:
		return &RemoteError{Sentinel: ufs.ErrUnavailable, Msg: "unavailable: " + st.Message()}
	case codes.DeadlineExceeded:
		return &RemoteError{Sentinel: context.DeadlineExceeded, Msg: st.Message()}
	case codes.Canceled:
		return &RemoteError{Sentinel: context.Canceled, Msg: st.Message()}
	}
	return errors.New(st.Message())
}

// HTTPStatus returns the HTTP status and reason for err (data path).
func HTTPStatus(err error) (int, string) {
	reason := Reason(err)
	for _, row := range errorTable {
		if row.reason == reason {
			return row.http, reason
		}
	}
	return http.StatusInternalServerError, reason
}

// FromHTTP rebuilds an error from a data-path reason and message.
func FromHTTP(code int, reason, msg string) error {
	if s := byReason(reason); s != nil {
		return &RemoteError{Sentinel: s, Msg: msg}
	}
	if code == http.StatusServiceUnavailable || code == http.StatusBadGateway {
		return &RemoteError{Sentinel: ufs.ErrUnavailable, Msg: msg}
	}
	return errors.New(msg)
}

// FromReason rebuilds an error from a wire reason (as Reason returns) and a
// message, for errors carried inside messages (per-block load results).
func FromReason(reason, msg string) error {
	if s := byReason(reason); s != nil {
		return &RemoteError{Sentinel: s, Msg: msg}
	}
	return errors.New(msg)
}
