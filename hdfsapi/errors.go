package hdfsapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
)

// RemoteError is a WebHDFS error: the Java exception a Hadoop namenode or
// datanode would throw, the HTTP status it is sent with, and a message that
// names namespace paths only. The server writes it as Hadoop does:
//
//	{"RemoteException":{"exception":"FileNotFoundException","javaClassName":"java.io.FileNotFoundException","message":"File does not exist: /data/x"}}
type RemoteError struct {
	// Exception is the simple class name ("FileNotFoundException").
	Exception string
	// Status is the HTTP status.
	Status int
	// Message is the human-readable description.
	Message string
	// err is the Strata error it was translated from, for the log only.
	err error
}

// Error implements error.
func (e *RemoteError) Error() string {
	if e.err != nil {
		return e.Exception + ": " + e.Message + ": " + e.err.Error()
	}
	return e.Exception + ": " + e.Message
}

// Unwrap returns the Strata error the RemoteError was translated from.
func (e *RemoteError) Unwrap() error { return e.err }

// JavaClassName is the fully qualified class of Exception.
func (e *RemoteError) JavaClassName() string {
	if c, ok := exceptions[e.Exception]; ok {
		return c.class
	}
	return "java.io.IOException"
}

// exceptions is the one table of the exceptions this server sends: their
// Java class and HTTP status. The statuses are those of Hadoop's WebHDFS
// (ExceptionHandler: FileNotFoundException 404, other IOExceptions 403,
// IllegalArgument/UnsupportedOperation 400), plus 401 for a request without
// valid credentials (as Hadoop's AuthenticationFilter answers) and 503 for an
// under-storage that cannot be reached now (retriable).
var exceptions = map[string]struct {
	class  string
	status int
}{
	"AccessControlException":           {"org.apache.hadoop.security.AccessControlException", http.StatusForbidden},
	"EOFException":                     {"java.io.EOFException", http.StatusForbidden},
	"FileAlreadyExistsException":       {"org.apache.hadoop.fs.FileAlreadyExistsException", http.StatusForbidden},
	"FileNotFoundException":            {"java.io.FileNotFoundException", http.StatusNotFound},
	"IllegalArgumentException":         {"java.lang.IllegalArgumentException", http.StatusBadRequest},
	"IOException":                      {"java.io.IOException", http.StatusInternalServerError},
	"ParentNotDirectoryException":      {"org.apache.hadoop.fs.ParentNotDirectoryException", http.StatusForbidden},
	"PathIsNotEmptyDirectoryException": {"org.apache.hadoop.fs.PathIsNotEmptyDirectoryException", http.StatusForbidden},
	"RetriableException":               {"org.apache.hadoop.ipc.RetriableException", http.StatusServiceUnavailable},
	"SecurityException":                {"java.lang.SecurityException", http.StatusUnauthorized},
	"UnsupportedOperationException":    {"java.lang.UnsupportedOperationException", http.StatusBadRequest},
}

// remoteErr makes a RemoteError of an exception of the table.
func remoteErr(exception, format string, args ...any) *RemoteError {
	c, ok := exceptions[exception]
	if !ok {
		exception, c = "IOException", exceptions["IOException"]
	}
	return &RemoteError{Exception: exception, Status: c.status, Message: fmt.Sprintf(format, args...)}
}

// badParam is Hadoop's error for a parameter it cannot parse.
func badParam(name, value, why string) *RemoteError {
	if len(value) > 64 {
		value = value[:64] + "..."
	}
	return remoteErr("IllegalArgumentException", "Invalid value for webhdfs parameter %q: %q %s", name, value, why)
}

// sentinels is the one mapping from Strata's sentinel errors to WebHDFS
// exceptions; the first matching row wins, so specific sentinels come
// first. msg formats the message with the namespace path the request named
// (%[1]s): a Strata error's own text is never sent, since it can hold the
// under-storage URI, the store's endpoint and SDK details. The server logs
// the full error with the request id instead.
var sentinels = []struct {
	err       error
	exception string
	msg       string
}{
	{ufs.ErrChanged, "RetriableException", "%[1]s changed in the under-storage while it was being read or written; try again"},
	{ufs.ErrNotFound, "FileNotFoundException", "File does not exist: %[1]s"},
	{namespace.ErrNoMount, "FileNotFoundException", "File does not exist: %[1]s (no mount holds it)"},
	{ufs.ErrPrecondition, "FileAlreadyExistsException", "%[1]s already exists"},
	{ufs.ErrExist, "FileAlreadyExistsException", "%[1]s already exists"},
	{ufs.ErrIsDir, "FileAlreadyExistsException", "%[1]s is a directory"},
	{ufs.ErrNotDir, "ParentNotDirectoryException", "A directory on the way to %[1]s is a file"},
	{ufs.ErrNotEmpty, "PathIsNotEmptyDirectoryException", "`%[1]s is non empty': Directory is not empty"},
	{rpcpb.ErrReadOnly, "AccessControlException", "Permission denied: the mount that holds %[1]s is read-only"},
	{ufs.ErrPermission, "AccessControlException", "Permission denied: the under-storage of %[1]s refused access (the mount's credentials or the store's policy)"},
	{ufs.ErrNotSupported, "UnsupportedOperationException", "The under-storage of %[1]s does not support this operation (or %[1]s lies in no mount)"},
	{rpcpb.ErrInvalidArgument, "IllegalArgumentException", "Invalid argument for %[1]s"},
	{ufs.ErrInvalidPath, "IllegalArgumentException", "Invalid path name %[1]s: an element is empty, '.' or '..', or has a NUL byte, or the path is too long"},
	{namespace.ErrInvalidPath, "IllegalArgumentException", "Invalid path name %[1]s: an element is empty, '.' or '..', or has a NUL byte, or the path is too long"},
	{ufs.ErrUnavailable, "RetriableException", "The under-storage of %[1]s is unavailable; try again later"},
	{context.DeadlineExceeded, "RetriableException", "The under-storage of %[1]s did not answer in time; try again later"},
}

// toRemote translates an error of the client (or a *RemoteError already)
// about the namespace path p into the RemoteError to send. Its message is
// the sentinel's, never err's text; the RemoteError keeps err for the log.
func toRemote(err error, p string) *RemoteError {
	var re *RemoteError
	if errors.As(err, &re) {
		return re
	}
	for _, row := range sentinels {
		if errors.Is(err, row.err) {
			e := remoteErr(row.exception, row.msg, p)
			e.err = err
			return e
		}
	}
	e := remoteErr("IOException", "Internal error on %s; the server log has the details under the request id", p)
	e.err = err
	return e
}
