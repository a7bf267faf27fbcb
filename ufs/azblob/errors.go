package azblob

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"syscall"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/stratafs/strata/ufs"
)

// opError is the error every FS method returns: which operation failed on
// which blob, the ufs sentinel it maps to (when one applies), and the
// underlying error. Its text is short and carries no credentials (URLs lose
// their query, where a SAS token lives); errors.Is matches the sentinel, the
// cause and, when the caller's context was done, its error.
type opError struct {
	op     string // "stat", "put", ...
	uri    string // azblob://container/key
	kind   error  // a ufs sentinel, or nil
	detail string // short human cause without secrets
	cause  error  // underlying error, or nil
	ctxErr error  // the caller's context error when it was done, or nil
}

func (e *opError) Error() string {
	var b strings.Builder
	b.WriteString("azblob: ")
	b.WriteString(e.op)
	b.WriteString(" ")
	b.WriteString(e.uri)
	if e.kind != nil {
		b.WriteString(": ")
		b.WriteString(e.kind.Error())
	}
	if e.detail != "" {
		b.WriteString(": ")
		b.WriteString(e.detail)
	}
	return b.String()
}

func (e *opError) Unwrap() []error {
	var out []error
	for _, err := range []error{e.kind, e.cause, e.ctxErr} {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// class is what classify learned about an error of the Azure SDK.
type class struct {
	kind   error  // ufs sentinel or nil
	status int    // HTTP status, 0 if there was no response
	code   string // Azure error code ("BlobNotFound"), if any
	detail string // short description without secrets
}

// classify is the one place that maps Azure SDK, HTTP, identity and network
// errors to ufs sentinels. ctx is the caller's context: when it is done, the
// error is the caller's cancellation, not an unavailable store.
func classify(ctx context.Context, err error) class {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return class{detail: ctx.Err().Error()}
	}
	var (
		rerr  *azcore.ResponseError
		aerr  *azidentity.AuthenticationFailedError
		arerr *azidentity.AuthenticationRequiredError
		nerr  net.Error
		operr *net.OpError
		dnerr *net.DNSError
	)
	switch {
	case errors.As(err, &rerr):
		c := class{status: rerr.StatusCode, code: rerr.ErrorCode}
		c.detail = fmt.Sprintf("HTTP %d", rerr.StatusCode)
		if rerr.ErrorCode != "" {
			c.detail += " " + rerr.ErrorCode
		}
		switch rerr.StatusCode {
		case http.StatusNotFound:
			c.kind = ufs.ErrNotFound
		case http.StatusUnauthorized, http.StatusForbidden:
			c.kind = ufs.ErrPermission
			if rerr.ErrorCode == "AuthenticationFailed" || rerr.ErrorCode == "AuthorizationFailure" || rerr.ErrorCode == "" {
				c.detail += " (check the account key, SAS token or identity)"
			}
		case http.StatusPreconditionFailed:
			c.kind = ufs.ErrChanged
		case http.StatusConflict:
			switch rerr.ErrorCode {
			case "BlobAlreadyExists":
				c.kind = ufs.ErrExist
			case "DirectoryIsNotEmpty":
				c.kind = ufs.ErrNotEmpty
			}
		case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
			http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			c.kind = ufs.ErrUnavailable
		}
		return c
	case errors.As(err, &aerr), errors.As(err, &arerr), strings.Contains(err.Error(), "DefaultAzureCredential"):
		return class{kind: ufs.ErrPermission, detail: "no usable Azure identity: set " + OptConnectionString + ", " + OptAccountKey + ", " + OptSASToken +
			" or " + OptAnonymous + "=true, or configure an identity (" + firstLine(redact(err.Error())) + ")"}
	case errors.As(err, &operr), errors.As(err, &dnerr),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &nerr) && nerr.Timeout():
		return class{kind: ufs.ErrUnavailable, detail: netDetail(err)}
	}
	return class{detail: netDetail(err)}
}

// netDetail describes a transport error in one line, naming the host instead
// of repeating the request URL (whose query may hold a SAS token).
func netDetail(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		host := "the endpoint"
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			host = u.Host
		}
		return ue.Op + " " + host + ": " + firstLine(redact(ue.Err.Error()))
	}
	return firstLine(redact(err.Error()))
}

// redact removes URL query strings (SAS tokens) from s. It runs on error
// paths only, so the expression is compiled per call.
func redact(s string) string {
	urlQuery := regexp.MustCompile(`(https?://[^\s"'?]*)\?[^\s"']*`)
	return urlQuery.ReplaceAllString(s, "$1?REDACTED")
}

// redactURL removes the query of one URL.
func redactURL(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i] + "?REDACTED"
	}
	return s
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
}

// mapErr wraps an Azure SDK error for operation op on path p.
func (fs *FS) mapErr(ctx context.Context, op, p string, err error) error {
	c := classify(ctx, err)
	return &opError{op: op, uri: fs.uri(p), kind: c.kind, detail: c.detail, cause: err, ctxErr: ctx.Err()}
}

// fail builds an error this package decided on itself (ErrIsDir, ErrNotEmpty...).
func (fs *FS) fail(op, p string, kind error, detail string) error {
	return &opError{op: op, uri: fs.uri(p), kind: kind, detail: detail}
}

// isNotFound reports whether err means the blob or container is absent.
func isNotFound(ctx context.Context, err error) bool {
	return classify(ctx, err).kind == ufs.ErrNotFound
}
