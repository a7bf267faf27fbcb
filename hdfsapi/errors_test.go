package hdfsapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
)

// TestToRemote checks the one table from Strata's sentinels to Hadoop's
// exceptions: status, class, and a message that names the namespace path
// and never the error's own text (which can hold an under-storage URI).
func TestToRemote(t *testing.T) {
	secret := "s3://secret-bucket/prefix at https://minio.internal:9000"
	for _, c := range []struct {
		err       error
		exception string
		status    int
	}{
		{ufs.ErrNotFound, "FileNotFoundException", 404},
		{namespace.ErrNoMount, "FileNotFoundException", 404},
		{ufs.ErrExist, "FileAlreadyExistsException", 403},
		{ufs.ErrPrecondition, "FileAlreadyExistsException", 403},
		{ufs.ErrIsDir, "FileAlreadyExistsException", 403},
		{ufs.ErrNotDir, "ParentNotDirectoryException", 403},
		{ufs.ErrNotEmpty, "PathIsNotEmptyDirectoryException", 403},
		{rpcpb.ErrReadOnly, "AccessControlException", 403},
		{ufs.ErrPermission, "AccessControlException", 403},
		{ufs.ErrNotSupported, "UnsupportedOperationException", 400},
		{ufs.ErrInvalidPath, "IllegalArgumentException", 400},
		{namespace.ErrInvalidPath, "IllegalArgumentException", 400},
		{rpcpb.ErrInvalidArgument, "IllegalArgumentException", 400},
		{ufs.ErrUnavailable, "RetriableException", 503},
		{ufs.ErrChanged, "RetriableException", 503},
		{context.DeadlineExceeded, "RetriableException", 503},
		{errors.New("boom"), "IOException", 500},
	} {
		err := fmt.Errorf("open %s for mount /data: %w", secret, c.err)
		e := toRemote(err, "/data/x")
		if e.Exception != c.exception || e.Status != c.status || e.JavaClassName() != exceptions[c.exception].class {
			t.Errorf("%v: %s %d %s", c.err, e.Exception, e.Status, e.JavaClassName())
		}
		if !strings.Contains(e.Message, "/data/x") || strings.Contains(e.Message, "secret") || strings.Contains(e.Message, "minio") {
			t.Errorf("%v: message %q", c.err, e.Message)
		}
		if !errors.Is(e, c.err) {
			t.Errorf("%v: the RemoteError does not keep the error for the log", c.err)
		}
	}
	// A RemoteError passes through unchanged.
	re := remoteErr("EOFException", "x")
	if toRemote(fmt.Errorf("wrapped: %w", re), "/p") != re {
		t.Error("a wrapped RemoteError was translated again")
	}
	for name, c := range exceptions {
		if c.status < 400 || !strings.Contains(c.class, name) && name != "IOException" {
			t.Errorf("%s: %+v", name, c)
		}
	}
	if remoteErr("NoSuchException", "m").Status != http.StatusInternalServerError {
		t.Error("an unknown exception is not an IOException")
	}
}

// TestParseRequest checks the parser's answers for the parameters it
// interprets.
func TestParseRequest(t *testing.T) {
	rq, err := parseRequest("GET", "/webhdfs/v1/a//b/", "OP=Open&Offset=3&LENGTH=4&noredirect=TRUE&delegation=t&user.name=u&unknown=1&unknown=2")
	if err != nil {
		t.Fatal(err)
	}
	if rq.op != "OPEN" || rq.path != "/a/b" || rq.offset != 3 || rq.length != 4 || !rq.noredirect || rq.token != "t" || rq.user != "u" || rq.datanode {
		t.Errorf("%+v", rq)
	}
	rq, err = parseRequest("PUT", "/webhdfs/v1/a", "op=RENAME&destination=/x//y/.")
	if err != nil || rq.dest != "/x/y" {
		t.Errorf("destination: %+v %v", rq, err)
	}
	for _, c := range []struct{ method, path, query, want string }{
		{"GET", "/webhdfs/v1/a/../b", "op=OPEN", "Invalid path name"},
		{"GET", "/webhdfs/v1/a", "op=OPEN&length=-2", "length"},
		{"GET", "/webhdfs/v1/a", "op=OPEN&offset=99999999999999999999", "offset"},
		{"PUT", "/webhdfs/v1/a", "op=CREATE&replication=0", "replication"},
		{"PUT", "/webhdfs/v1/a", "op=CREATE&blocksize=-1", "blocksize"},
		{"PUT", "/webhdfs/v1/a", "op=SETPERMISSION&permission=8", "permission"},
		{"PUT", "/webhdfs/v1/a", "op=SETPERMISSION&permission=17777", "permission"},
		{"PUT", "/webhdfs/v1/a", "op=SETTIMES&modificationtime=-2", "modificationtime"},
		{"GET", "/webhdfs/v1/a", "op=OPEN&Offset=1&offset=2", "more than once"},
		{"GET", "/webhdfs/v1/a", "op=LISTSTATUS_BATCH&startafter=..", "startafter"},
		{"POST", "/webhdfs/v1/a", "op=CREATE", "PostOpParam.Op CREATE"},
		{"GET", "/other", "op=OPEN", "/webhdfs/v1/"},
	} {
		_, err := parseRequest(c.method, c.path, c.query)
		if err == nil || !strings.Contains(err.Message, c.want) {
			t.Errorf("%s %s?%s: %v, want %q", c.method, c.path, c.query, err, c.want)
		}
	}
	for in, want := range map[string]uint32{"1777": 0o1777, "0644": 0o644, "01777": 0o1777, "0": 0} {
		if p, err := parsePermission(in); err != nil || p != want {
			t.Errorf("permission %s: %o %v", in, p, err)
		}
	}
	for _, bad := range []string{"2000", "8", "-1", "", "0x1", "77777777777777777777777"} {
		if _, err := parsePermission(bad); err == nil {
			t.Errorf("permission %q accepted", bad)
		}
	}
}
