package hdfsapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stratafs/strata/namespace"
)

// FuzzWebHDFSPath feeds arbitrary methods, URL paths and queries to the
// request parser. It must not panic; what it accepts must be a known
// operation of that method on a clean namespace path with no ".."
// element (and a clean destination); what it refuses must be a 400 or 404
// RemoteException of the table. The data URL the server redirects to must
// parse back to the same operation, path and parameters. `go test` runs the
// seeds in testdata/fuzz/FuzzWebHDFSPath; `go test -fuzz FuzzWebHDFSPath
// ./hdfsapi/` explores.
func FuzzWebHDFSPath(f *testing.F) {
	f.Add("GET", "/webhdfs/v1/data/a.txt", "op=OPEN&offset=5&length=10&delegation=wh1.a.1.b&user.name=bob")
	f.Add("PUT", "/webhdfs/v1/data/../etc", "op=CREATE&overwrite=true")
	f.Add("PUT", "/webhdfs/v1/a", "op=RENAME&destination=/b/./c//d")
	f.Add("GET", "/webhdfs/v1", "OP=liststatus_batch&startAfter=x")
	f.Add("DELETE", "/webhdfs/v1/a%00b", "op=DELETE&recursive=TRUE&recursive=false")
	f.Add("POST", "/webhdfs/v2/x", "op=APPEND&%zz")
	f.Fuzz(func(t *testing.T, method, path, rawQuery string) {
		rq, err := parseRequest(method, path, rawQuery)
		if err != nil {
			if rq != nil {
				t.Fatalf("both a request and an error")
			}
			if err.Status != http.StatusBadRequest && err.Status != http.StatusNotFound {
				t.Fatalf("status %d for a parse error: %v", err.Status, err)
			}
			if _, ok := exceptions[err.Exception]; !ok {
				t.Fatalf("exception %q is not in the table", err.Exception)
			}
			return
		}
		spec, ok := ops[rq.op]
		if !ok || spec.method != method || rq.spec != spec {
			t.Fatalf("accepted op %q for %s", rq.op, method)
		}
		paths := []string{rq.path}
		if rq.dest != "" {
			paths = append(paths, rq.dest)
		}
		for _, p := range paths {
			c, cerr := namespace.Clean(p)
			if cerr != nil || c != p {
				t.Fatalf("path %q is not clean (%q, %v)", p, c, cerr)
			}
			if strings.Contains(p+"/", "/../") {
				t.Fatalf("path %q climbs", p)
			}
		}
		if rq.offset < 0 || rq.length < -1 || strings.ContainsAny(rq.startAfter, "/\x00") {
			t.Fatalf("accepted %+v", rq)
		}
		// The data URL parses back to the same request.
		s := &Server{}
		r := httptest.NewRequest(method, "http://127.0.0.1:9870/", nil)
		loc := s.location(r, rq)
		u, perr := url.Parse(loc)
		if perr != nil {
			t.Fatalf("data URL %q: %v", loc, perr)
		}
		back, err := parseRequest(method, u.Path, u.RawQuery)
		if err != nil {
			t.Fatalf("data URL %q does not parse: %v", loc, err)
		}
		if back.op != rq.op || back.path != rq.path || back.dest != rq.dest || !back.datanode || back.offset != rq.offset ||
			back.length != rq.length || back.overwrite != rq.overwrite || back.token != rq.token || back.user != rq.user {
			t.Fatalf("data URL %q parses to %+v, not %+v", loc, back, rq)
		}
	})
}
