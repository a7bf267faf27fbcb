package gcs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/storage"
	"golang.org/x/oauth2"
	"google.golang.org/api/googleapi"

	"github.com/stratafs/strata/ufs"
)

// opError is the error every FS method returns: which operation failed on
// which object, the ufs sentinel it maps to (when one applies), and the
// underlying error. Its text is short and carries no credentials; errors.Is
// matches both the sentinel and the cause.
type opError struct {
	op     string // "stat", "put", ...
	uri    string // gs://bucket/key
	kind   error  // a ufs sentinel, or nil
	detail string // short human cause; empty to use cause's text
	cause  error  // underlying error, or nil
	ctxErr error  // the caller's context error when it was done, or nil
}

func (e *opError) Error() string {
	var b strings.Builder
	b.WriteString("gcs: ")
	b.WriteString(e.op)
	b.WriteString(" ")
	b.WriteString(e.uri)
	if e.kind != nil {
		b.WriteString(": ")
		b.WriteString(e.kind.Error())
	}
	switch {
	case e.detail != "":
		b.WriteString(": ")
		b.WriteString(e.detail)
	case e.cause != nil:
		b.WriteString(": ")
		b.WriteString(e.cause.Error())
	}
	return b.String()
}

func (e *opError) Unwrap() []error {
	var out []error
	if e.kind != nil {
		out = append(out, e.kind)
	}
	if e.cause != nil {
		out = append(out, e.cause)
	}
	if e.ctxErr != nil {
		out = append(out, e.ctxErr)
	}
	return out
}

// class is what mapErr learned about an error from the storage library.
type class struct {
	kind   error  // ufs sentinel or nil
	status int    // HTTP status, 0 if there was no response
	detail string // short description without secrets
}

// classify is the one place that maps storage library, HTTP, auth and network
// errors to ufs sentinels. ctx is the caller's context: when it is done, the
// error is the caller's cancellation, not an unavailable store.
func classify(ctx context.Context, err error) class {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return class{detail: ctx.Err().Error()}
	}
	var (
		gerr  *googleapi.Error
		aerr  *auth.Error
		rerr  *oauth2.RetrieveError
		nerr  net.Error
		operr *net.OpError
		dnerr *net.DNSError
	)
	switch {
	case errors.Is(err, storage.ErrObjectNotExist):
		return class{kind: ufs.ErrNotFound, status: http.StatusNotFound, detail: "object does not exist"}
	case errors.Is(err, storage.ErrBucketNotExist):
		return class{kind: ufs.ErrNotFound, status: http.StatusNotFound, detail: "bucket does not exist"}
	case errors.As(err, &gerr):
		c := class{status: gerr.Code, detail: httpDetail(gerr)}
		switch gerr.Code {
		case http.StatusNotFound:
			c.kind = ufs.ErrNotFound
		case http.StatusUnauthorized, http.StatusForbidden:
			c.kind = ufs.ErrPermission
		case http.StatusPreconditionFailed:
			c.kind = ufs.ErrChanged
		case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			c.kind = ufs.ErrUnavailable
		}
		return c
	case errors.As(err, &aerr):
		return class{kind: ufs.ErrPermission, detail: "credentials rejected: " + authDetail(aerr)}
	case errors.As(err, &rerr):
		return class{kind: ufs.ErrPermission, detail: "credentials rejected: " + firstLine(rerr.Error())}
	case strings.Contains(err.Error(), "could not find default credentials"):
		return class{kind: ufs.ErrPermission, detail: "no Application Default Credentials found (GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login, or a GCE metadata server)"}
	case errors.As(err, &operr), errors.As(err, &dnerr),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &nerr) && nerr.Timeout():
		return class{kind: ufs.ErrUnavailable, detail: netDetail(err)}
	}
	return class{detail: netDetail(err)}
}

// netDetail describes a transport error in one line, naming the host instead
// of repeating the whole request URL.
func netDetail(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		host := "the endpoint"
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			host = u.Host
		}
		return ue.Op + " " + host + ": " + firstLine(ue.Err.Error())
	}
	return firstLine(err.Error())
}

// authDetail describes a refused token request: the status and the OAuth
// error code of the token endpoint's answer (never a token).
func authDetail(e *auth.Error) string {
	if e.Response == nil {
		return firstLine(e.Error())
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	s := fmt.Sprintf("the token endpoint answered HTTP %d", e.Response.StatusCode)
	if json.Unmarshal(e.Body, &body) == nil && body.Error != "" {
		s += " " + body.Error
		if body.Description != "" {
			s += ": " + firstLine(body.Description)
		}
	}
	return s
}

// httpDetail renders a googleapi error in one short line.
func httpDetail(e *googleapi.Error) string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Code)
	}
	return fmt.Sprintf("HTTP %d: %s", e.Code, firstLine(msg))
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}

// mapErr wraps a storage library error for operation op on path p. When ctx
// is done the error also matches ctx.Err(), whatever the library returned.
func (fs *FS) mapErr(ctx context.Context, op, p string, err error) error {
	c := classify(ctx, err)
	return &opError{op: op, uri: fs.uri(p), kind: c.kind, detail: c.detail, cause: err, ctxErr: ctx.Err()}
}

// fail builds an error this package decided on itself (ErrIsDir, ErrNotEmpty...).
func (fs *FS) fail(op, p string, kind error, detail string) error {
	return &opError{op: op, uri: fs.uri(p), kind: kind, detail: detail}
}

// isNotFound reports whether err means the object or prefix is absent.
func isNotFound(ctx context.Context, err error) bool {
	return classify(ctx, err).kind == ufs.ErrNotFound
}
