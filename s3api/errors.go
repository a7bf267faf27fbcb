package s3api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
)

// Error is an S3 error: a code from the S3 API reference, the HTTP status it
// is sent with, and a message for people. Handlers return *Error values (from
// apiErr, or toAPIError for errors of the client) and the server writes them as
// S3 XML error documents.
type Error struct {
	// Code is the S3 error code ("NoSuchKey", "SignatureDoesNotMatch", ...).
	Code string
	// Status is the HTTP status.
	Status int
	// Message is the human-readable description.
	Message string
	// extra elements of the error document (such as StringToSign).
	extra []xmlField
	// Header fields to set on the error response (such as Content-Range).
	Header http.Header
	// err is the Strata error it was translated from, if any.
	err error
}

// Error implements error.
func (e *Error) Error() string {
	if e.err != nil {
		return e.Code + ": " + e.Message + ": " + e.err.Error()
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the Strata error the S3 error was translated from.
func (e *Error) Unwrap() error { return e.err }

// xmlField is one extra element of an error document.
type xmlField struct {
	Name, Value string
}

// codes is the one table of the S3 error codes this server sends: their HTTP
// status and default message.
var codes = map[string]struct {
	status int
	msg    string
}{
	"AccessDenied":                      {http.StatusForbidden, "Access Denied."},
	"AuthorizationHeaderMalformed":      {http.StatusBadRequest, "The authorization header is malformed."},
	"AuthorizationQueryParametersError": {http.StatusBadRequest, "Error parsing the X-Amz-Credential parameter."},
	"BadDigest":                         {http.StatusBadRequest, "The Content-MD5 you specified did not match what we received."},
	"BucketAlreadyOwnedByYou":           {http.StatusConflict, "The bucket you tried to create already exists, and you own it."},
	"EntityTooLarge":                    {http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed object size."},
	"EntityTooSmall":                    {http.StatusBadRequest, "Your proposed upload is smaller than the minimum allowed object size."},
	"IncompleteBody":                    {http.StatusBadRequest, "You did not provide the number of bytes specified by the Content-Length HTTP header."},
	"InternalError":                     {http.StatusInternalServerError, "We encountered an internal error. Please try again."},
	"InvalidAccessKeyId":                {http.StatusForbidden, "The AWS access key Id you provided does not exist in our records."},
	"InvalidArgument":                   {http.StatusBadRequest, "Invalid argument."},
	"InvalidBucketName":                 {http.StatusBadRequest, "The specified bucket is not valid."},
	"InvalidDigest":                     {http.StatusBadRequest, "The Content-MD5 you specified is not valid."},
	"InvalidPart":                       {http.StatusBadRequest, "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag."},
	"InvalidPartOrder":                  {http.StatusBadRequest, "The list of parts was not in ascending order. The parts list must be specified in order by part number."},
	"InvalidPartNumber":                 {http.StatusRequestedRangeNotSatisfiable, "The requested partnumber is not satisfiable."},
	"InvalidRange":                      {http.StatusRequestedRangeNotSatisfiable, "The requested range is not satisfiable."},
	"InvalidRequest":                    {http.StatusBadRequest, "Invalid request."},
	"InvalidURI":                        {http.StatusBadRequest, "Couldn't parse the specified URI."},
	"KeyTooLongError":                   {http.StatusBadRequest, "Your key is too long."},
	"MalformedXML":                      {http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema."},
	"MaxMessageLengthExceeded":          {http.StatusBadRequest, "Your request was too big."},
	"MetadataTooLarge":                  {http.StatusBadRequest, "Your metadata headers exceed the maximum allowed metadata size."},
	"MethodNotAllowed":                  {http.StatusMethodNotAllowed, "The specified method is not allowed against this resource."},
	"MissingContentLength":              {http.StatusLengthRequired, "You must provide the Content-Length HTTP header."},
	"MissingSecurityHeader":             {http.StatusBadRequest, "Your request is missing a required header."},
	"NoSuchBucket":                      {http.StatusNotFound, "The specified bucket does not exist."},
	"NoSuchKey":                         {http.StatusNotFound, "The specified key does not exist."},
	"NoSuchUpload":                      {http.StatusNotFound, "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed."},
	"NotImplemented":                    {http.StatusNotImplemented, "A header or query you provided implies functionality that is not implemented."},
	"NotModified":                       {http.StatusNotModified, "Not Modified."},
	"OperationAborted":                  {http.StatusConflict, "A conflicting operation is currently in progress against this resource. Please try again."},
	"PreconditionFailed":                {http.StatusPreconditionFailed, "At least one of the preconditions you specified did not hold."},
	"RequestHeaderSectionTooLarge":      {http.StatusBadRequest, "Your request header section exceeds the maximum allowed size."},
	"RequestTimeTooSkewed":              {http.StatusForbidden, "The difference between the request time and the server's time is too large."},
	"ServiceUnavailable":                {http.StatusServiceUnavailable, "Please reduce your request rate."},
	"SignatureDoesNotMatch":             {http.StatusForbidden, "The request signature we calculated does not match the signature you provided. Check your key and signing method."},
	"XAmzContentSHA256Mismatch":         {http.StatusBadRequest, "The provided 'x-amz-content-sha256' header does not match what was computed."},
	// Strata's own: a key names a directory of the namespace, or a
	// directory on the way is a file; the under-storage cannot hold both.
	"XStrataPathConflict": {http.StatusConflict, "The key conflicts with a directory or file of the namespace."},
}

// apiErr makes an S3 error of a code of the table, with the table's message
// when msg is empty.
func apiErr(code, msg string, args ...any) *Error {
	c, ok := codes[code]
	if !ok {
		c = codes["InternalError"]
		code = "InternalError"
	}
	m := c.msg
	if msg != "" {
		m = fmt.Sprintf(msg, args...)
	}
	return &Error{Code: code, Status: c.status, Message: m}
}

// opKind tells toAPIError what the failed call was for: reading a key maps
// "is a directory" to NoSuchKey, writing it to XStrataPathConflict.
type opKind int

const (
	opRead opKind = iota
	opWrite
)

// sentinels is the one mapping from Strata's sentinel errors to S3 codes. The
// first matching row wins, so more specific sentinels come first. read is the
// code for reads where it differs. msg is the message sent with code (the
// code's own from the table when empty; read codes always get theirs).
//
// A Strata error's text is never sent: it can hold the under-storage URI
// (s3://bucket/prefix/...), the store's endpoint and the SDK's retry and
// request details. The message is fixed per sentinel, and the full error goes
// to the server log with the request id that the error document carries too.
var sentinels = []struct {
	err  error
	code string
	read string
	msg  string
}{
	{ufs.ErrPrecondition, "PreconditionFailed", "", ""},
	{ufs.ErrChanged, "OperationAborted", "", "The object changed while it was being read or written; try again."},
	{ufs.ErrNotFound, "NoSuchKey", "", ""},
	{namespace.ErrNoMount, "NoSuchBucket", "", ""},
	{ufs.ErrIsDir, "XStrataPathConflict", "NoSuchKey", "The key names a directory of the namespace; a directory cannot hold data."},
	{ufs.ErrNotDir, "XStrataPathConflict", "NoSuchKey", "A directory on the way to the key is a file of the namespace."},
	{ufs.ErrExist, "XStrataPathConflict", "NoSuchKey", "The key conflicts with a file or directory that exists in the namespace."},
	{ufs.ErrNotEmpty, "XStrataPathConflict", "", "The key names a directory of the namespace that is not empty."},
	{rpcpb.ErrReadOnly, "AccessDenied", "", "The mount that holds this key is read-only."},
	{ufs.ErrPermission, "AccessDenied", "", "The under-storage of this path refused access; the mount's credentials or the store's policy do not allow this."},
	{ufs.ErrNotSupported, "NotImplemented", "", "The under-storage of this path does not support this operation."},
	{rpcpb.ErrInvalidArgument, "InvalidArgument", "", ""},
	{ufs.ErrInvalidPath, "InvalidArgument", "NoSuchKey", "The key is not a valid path of the namespace: it has an empty, '.' or '..' element, a NUL byte, or an element or a path that is too long."},
	{namespace.ErrInvalidPath, "InvalidArgument", "NoSuchKey", "The key is not a valid path of the namespace: it has an empty, '.' or '..' element, a NUL byte, or an element or a path that is too long."},
	{ufs.ErrUnavailable, "ServiceUnavailable", "", "The under-storage of this path is unavailable; try again later."},
	{context.DeadlineExceeded, "ServiceUnavailable", "", "The under-storage of this path did not answer in time; try again later."},
	{context.Canceled, "InternalError", "", ""},
}

// toAPIError translates an error of the client (or an *Error already) into
// the S3 error to send. The message is the one of the sentinel err wraps (see
// sentinels), or the code's own: never err's text, which the server logs
// instead (with the request id). The *Error keeps err for the log.
func toAPIError(err error, kind opKind) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	for _, row := range sentinels {
		if errors.Is(err, row.err) {
			code := row.code
			if kind == opRead && row.read != "" {
				code = row.read
			}
			e := apiErr(code, "")
			if code == row.code && row.msg != "" {
				e.Message = row.msg
			}
			e.err = err
			return e
		}
	}
	e := apiErr("InternalError", "")
	e.err = err
	return e
}
