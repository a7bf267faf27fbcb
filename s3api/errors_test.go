package s3api

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
)

// leaks are what an error document must never show: the under-storage URI,
// the store's endpoint and the SDK's details.
var leaks = []string{"s3://", "secret-bucket", "10.1.2.3", "9000", "retry", "attempt", "connection refused"}

// internalErr wraps sentinel the way the S3 backend and the client do: the
// UFS URI, the endpoint and the SDK's retry text.
func internalErr(sentinel error) error {
	return fmt.Errorf(`open s3://secret-bucket/prefix for mount /data: s3: get "s3://secret-bucket/x": %w: `+
		`operation error S3: GetObject, exceeded maximum number of attempts, 3, https response error: `+
		`Get "http://10.1.2.3:9000/secret-bucket/x": dial tcp 10.1.2.3:9000: connect: connection refused (retry quota exceeded)`, sentinel)
}

// failResponse runs Server.fail on err for a GET of /data/x and returns the
// response and what was logged.
func failResponse(t *testing.T, err error, id string) (*httptest.ResponseRecorder, string) {
	t.Helper()
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})), idPrefix: "HOST1"}
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/data/x", nil)
	rq := &request{r: r, w: &responseWriter{ResponseWriter: rec}, op: "GetObject", t: target{Bucket: "data", Key: "x"}, reqID: id}
	if s.fail(rq, err) {
		t.Fatal("fail reports a begun response")
	}
	return rec, logs.String()
}

// TestErrorDocumentsHideTheUnderStorage: a 5xx error document carries a
// fixed message and the request id, never the URI, endpoint or SDK text of
// the error; the full error goes to the log at warn with the same request
// id, once.
func TestErrorDocumentsHideTheUnderStorage(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{internalErr(ufs.ErrUnavailable), 503, "ServiceUnavailable"},
		{internalErr(context.DeadlineExceeded), 503, "ServiceUnavailable"},
		{internalErr(errors.New("SDK: unexpected EOF")), 500, "InternalError"},
		// An error that crossed the wire from a worker.
		{&rpcpb.RemoteError{Sentinel: ufs.ErrUnavailable, Msg: internalErr(errors.New("x")).Error()}, 503, "ServiceUnavailable"},
	}
	for i, c := range cases {
		id := fmt.Sprintf("REQ%04d", i)
		rec, logs := failResponse(t, c.err, id)
		body := rec.Body.String()
		var doc struct{ Code, Message, RequestId string }
		if err := xml.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatalf("%v: not an error document: %q", c.err, body)
		}
		if rec.Code != c.status || doc.Code != c.code || doc.Message == "" {
			t.Errorf("case %d: %d %s %q; want %d %s", i, rec.Code, doc.Code, doc.Message, c.status, c.code)
		}
		for _, l := range leaks {
			if strings.Contains(body, l) {
				t.Errorf("case %d: %q in the error document: %s", i, l, body)
			}
		}
		if doc.RequestId != id || rec.Header().Get("X-Amz-Request-Id") != "" && rec.Header().Get("X-Amz-Request-Id") != id {
			t.Errorf("case %d: request id %q in the document; want %q", i, doc.RequestId, id)
		}
		if n := strings.Count(logs, "level=WARN"); n != 1 || strings.Count(logs, "\n") != 1 ||
			!strings.Contains(logs, "request_id="+id) || !strings.Contains(logs, "secret-bucket/x") || !strings.Contains(logs, "10.1.2.3:9000") {
			t.Errorf("case %d: want one warning with the request id and the full error; log:\n%s", i, logs)
		}
	}
	if rec, _ := failResponse(t, internalErr(ufs.ErrUnavailable), "R"); !strings.Contains(rec.Body.String(), "unavailable; try again later") {
		t.Errorf("503 message: %s", rec.Body.String())
	}
}

// TestErrorMessagesNeverCarryTheErrorText: whatever sentinel an error wraps,
// read or write, the S3 message is the sentinel's fixed text (4xx included:
// an AccessDenied or NoSuchKey from the under-storage names its URI too).
func TestErrorMessagesNeverCarryTheErrorText(t *testing.T) {
	for _, row := range sentinels {
		for _, kind := range []opKind{opRead, opWrite} {
			e := toAPIError(internalErr(row.err), kind)
			for _, l := range leaks {
				if strings.Contains(e.Message, l) {
					t.Errorf("%v (kind %d): %s message %q has %q", row.err, kind, e.Code, e.Message, l)
				}
			}
			if e.Message == "" || !errors.Is(e, row.err) {
				t.Errorf("%v (kind %d): %s %q does not keep the error for the log", row.err, kind, e.Code, e.Message)
			}
		}
	}
	// Codes and the messages people rely on.
	for _, c := range []struct {
		err        error
		kind       opKind
		code, want string
	}{
		{ufs.ErrNotFound, opRead, "NoSuchKey", "The specified key does not exist."},
		{namespace.ErrNoMount, opRead, "NoSuchBucket", "The specified bucket does not exist."},
		{rpcpb.ErrReadOnly, opWrite, "AccessDenied", "The mount that holds this key is read-only."},
		{ufs.ErrIsDir, opRead, "NoSuchKey", "The specified key does not exist."},
		{ufs.ErrIsDir, opWrite, "XStrataPathConflict", "The key names a directory"},
	} {
		e := toAPIError(internalErr(c.err), c.kind)
		if e.Code != c.code || !strings.HasPrefix(e.Message, c.want) {
			t.Errorf("%v: %s %q; want %s %q", c.err, e.Code, e.Message, c.code, c.want)
		}
	}
	// An S3 error made by the server itself passes through as it is.
	ae := apiErr("InvalidArgument", "max-keys must be a non-negative integer")
	if got := toAPIError(fmt.Errorf("wrapped: %w", ae), opRead); got != ae {
		t.Errorf("an *Error was translated again: %+v", got)
	}
}
