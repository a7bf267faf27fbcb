package hdfsapi

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratafs/strata/conf"
)

func readLocal(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

// TestCreate checks CREATE: the two steps, 201 Created, overwrite, an
// existing file or directory, HttpFS's one-step data=true, a read-only
// mount and a path in no mount.
func TestCreate(t *testing.T) {
	e := startEnv(t, nil)
	cl := e.client(t, e.admin)
	data := pattern(readChunk+77, 3)

	r := do(t, cl, "PUT", e.u("/data/new/file.bin", "op", "CREATE", "blocksize", "134217728", "replication", "3", "permission", "640", "buffersize", "4096"), nil)
	loc := r.header.Get("Location")
	if r.status != http.StatusTemporaryRedirect || !strings.Contains(loc, "op=CREATE") || !strings.Contains(loc, "datanode=true") {
		t.Fatalf("CREATE step 1: %d %q %s", r.status, loc, r.body)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "new", "file.bin")); !os.IsNotExist(err) {
		t.Errorf("the first step created the file: %v", err)
	}
	r = do(t, cl, "PUT", loc, data)
	if r.status != http.StatusCreated || r.header.Get("Location") != e.base+"/data/new/file.bin" {
		t.Fatalf("CREATE step 2: %d %v %s", r.status, r.header, r.body)
	}
	if got := readLocal(t, filepath.Join(e.dir, "new", "file.bin")); !bytes.Equal(got, data) {
		t.Errorf("the under-storage holds %d bytes, want %d", len(got), len(data))
	}

	// An existing file without overwrite: refused at both steps, unchanged.
	wantRemote(t, do(t, cl, "PUT", e.u("/data/new/file.bin", "op", "CREATE"), nil), 403, "FileAlreadyExistsException", "/data/new/file.bin already exists")
	wantRemote(t, do(t, cl, "PUT", loc+"&overwrite=false", []byte("x")), 403, "FileAlreadyExistsException")
	wantRemote(t, do(t, cl, "PUT", strings.Replace(loc, "overwrite=true", "", 1), []byte("x")), 403, "FileAlreadyExistsException")
	if got := readLocal(t, filepath.Join(e.dir, "new", "file.bin")); !bytes.Equal(got, data) {
		t.Error("a refused CREATE changed the file")
	}
	// overwrite=true replaces it.
	if r := follow(t, cl, "PUT", e.u("/data/new/file.bin", "op", "CREATE", "overwrite", "true"), []byte("v2")); r.status != 201 {
		t.Fatalf("CREATE overwrite=true: %d %s", r.status, r.body)
	}
	if got := readLocal(t, filepath.Join(e.dir, "new", "file.bin")); string(got) != "v2" {
		t.Errorf("after overwrite: %q", got)
	}
	// noredirect answers the data URL as JSON.
	r = do(t, cl, "PUT", e.u("/data/nr.txt", "op", "CREATE", "noredirect", "true"), nil)
	if l, _ := r.json(t)["Location"].(string); r.status != 200 || !strings.Contains(l, "datanode=true") {
		t.Errorf("CREATE noredirect: %d %s", r.status, r.body)
	}
	// HttpFS's data=true writes in one step; an empty body makes an empty file.
	if r := do(t, cl, "PUT", e.u("/data/one.txt", "op", "CREATE", "data", "true"), []byte("one step")); r.status != 201 {
		t.Fatalf("CREATE data=true: %d %s", r.status, r.body)
	}
	if r := do(t, cl, "PUT", e.u("/data/empty.txt", "op", "CREATE", "datanode", "true"), nil); r.status != 201 {
		t.Fatalf("CREATE empty: %d %s", r.status, r.body)
	}
	if got := readLocal(t, filepath.Join(e.dir, "one.txt")); string(got) != "one step" {
		t.Errorf("data=true wrote %q", got)
	}
	if fi, err := os.Stat(filepath.Join(e.dir, "empty.txt")); err != nil || fi.Size() != 0 {
		t.Errorf("empty file: %v", err)
	}

	wantRemote(t, do(t, cl, "PUT", e.u("/data/new", "op", "CREATE", "overwrite", "true"), nil), 403, "FileAlreadyExistsException", "/data/new already exists as a directory")
	wantRemote(t, do(t, cl, "PUT", e.u("/data", "op", "CREATE", "overwrite", "true"), nil), 403, "FileAlreadyExistsException", "mount point")
	wantRemote(t, do(t, cl, "PUT", e.u("/ro/x", "op", "CREATE"), nil), 403, "AccessControlException", "read-only")
	wantRemote(t, do(t, cl, "PUT", e.u("/ro/x", "op", "CREATE", "datanode", "true"), []byte("x")), 403, "AccessControlException", "read-only")
	wantRemote(t, do(t, cl, "PUT", e.u("/nomount/x", "op", "CREATE"), nil), 400, "UnsupportedOperationException", "/nomount/x lies in no mount")
	wantRemote(t, do(t, cl, "PUT", e.u("/data/new/file.bin/under", "op", "CREATE", "datanode", "true"), []byte("x")), 403, "ParentNotDirectoryException")
	wantRemote(t, do(t, cl, "PUT", e.u("/data/x", "op", "CREATE", "overwrite", "maybe"), nil), 400, "IllegalArgumentException", "overwrite")
	wantRemote(t, do(t, cl, "PUT", e.u("/data/x", "op", "CREATE", "permission", "999"), nil), 400, "IllegalArgumentException", "permission")
}

// TestAppend checks APPEND: two steps, appended bytes after the old ones
// across read chunks, a missing file, a directory, and the size bound.
func TestAppend(t *testing.T) {
	e := startEnv(t, func(cfg *conf.Config) { cfg.HDFS.MaxAppendSize = 2*readChunk + 10 })
	cl := e.client(t, e.admin)
	old := pattern(readChunk+5, 4)
	writeFile(t, filepath.Join(e.dir, "log"), old)
	add := pattern(1000, 5)
	r := do(t, cl, "POST", e.u("/data/log", "op", "APPEND", "buffersize", "4096"), nil)
	loc := r.header.Get("Location")
	if r.status != http.StatusTemporaryRedirect || !strings.Contains(loc, "op=APPEND") || !strings.Contains(loc, "datanode=true") {
		t.Fatalf("APPEND step 1: %d %q", r.status, loc)
	}
	if r := do(t, cl, "POST", loc, add); r.status != 200 || len(r.body) != 0 {
		t.Fatalf("APPEND step 2: %d %s", r.status, r.body)
	}
	if r := follow(t, cl, "POST", e.u("/data/log", "op", "APPEND"), []byte("!")); r.status != 200 {
		t.Fatalf("second APPEND: %d %s", r.status, r.body)
	}
	want := append(append(append([]byte{}, old...), add...), '!')
	if got := readLocal(t, filepath.Join(e.dir, "log")); !bytes.Equal(got, want) {
		t.Errorf("after two appends: %d bytes, want %d", len(got), len(want))
	}
	wantRemote(t, do(t, cl, "POST", e.u("/data/none", "op", "APPEND"), nil), 404, "FileNotFoundException", "/data/none")
	if err := os.Mkdir(filepath.Join(e.dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	wantRemote(t, do(t, cl, "POST", e.u("/data/d", "op", "APPEND"), nil), 403, "FileAlreadyExistsException", "Cannot append to directory /data/d")
	// Past the bound: refused, and the file is left as it was.
	big := pattern(readChunk, 6)
	wantRemote(t, do(t, cl, "POST", loc, big), 400, "UnsupportedOperationException", "hdfs.max_append_size")
	if got := readLocal(t, filepath.Join(e.dir, "log")); !bytes.Equal(got, want) {
		t.Errorf("a refused APPEND changed the file: %d bytes", len(got))
	}
	// The body's length unknown (chunked): the bound holds while streaming.
	req, _ := http.NewRequest("POST", loc, struct{ *bytes.Reader }{bytes.NewReader(big)})
	req.ContentLength = -1
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("chunked APPEND past the bound: %d", resp.StatusCode)
	}
	if got := readLocal(t, filepath.Join(e.dir, "log")); !bytes.Equal(got, want) {
		t.Errorf("a refused chunked APPEND changed the file: %d bytes", len(got))
	}
	wantRemote(t, do(t, cl, "POST", e.u("/ro/x", "op", "APPEND"), nil), 403, "AccessControlException", "read-only")
}

// TestAppendOff checks that max_append_size 0 turns APPEND off.
func TestAppendOff(t *testing.T) {
	e := startEnv(t, func(cfg *conf.Config) { cfg.HDFS.MaxAppendSize = 0 })
	writeFile(t, filepath.Join(e.dir, "f"), []byte("x"))
	wantRemote(t, do(t, e.client(t, e.admin), "POST", e.u("/data/f", "op", "APPEND"), nil), 400, "UnsupportedOperationException", "turned off")
}

// TestMkdirsRenameDelete checks MKDIRS, RENAME and DELETE with HDFS's
// boolean answers and their errors.
func TestMkdirsRenameDelete(t *testing.T) {
	e := startEnv(t, nil)
	cl := e.client(t, e.admin)
	boolean := func(r response) bool {
		t.Helper()
		v, ok := r.json(t)["boolean"].(bool)
		if r.status != 200 || !ok {
			t.Fatalf("%d %s: not a boolean answer", r.status, r.body)
		}
		return v
	}
	if !boolean(do(t, cl, "PUT", e.u("/data/a/b/c", "op", "MKDIRS", "permission", "755"), nil)) {
		t.Error("MKDIRS answered false")
	}
	if fi, err := os.Stat(filepath.Join(e.dir, "a", "b", "c")); err != nil || !fi.IsDir() {
		t.Fatalf("MKDIRS made nothing: %v", err)
	}
	if !boolean(do(t, cl, "PUT", e.u("/data/a/b", "op", "MKDIRS"), nil)) || !boolean(do(t, cl, "PUT", e.u("/data", "op", "MKDIRS"), nil)) {
		t.Error("MKDIRS of an existing directory answered false")
	}
	writeFile(t, filepath.Join(e.dir, "a", "f.txt"), []byte("f"))
	wantRemote(t, do(t, cl, "PUT", e.u("/data/a/f.txt", "op", "MKDIRS"), nil), 403, "FileAlreadyExistsException", "Path is not a directory: /data/a/f.txt")
	wantRemote(t, do(t, cl, "PUT", e.u("/ro/newdir", "op", "MKDIRS"), nil), 403, "AccessControlException")

	// RENAME.
	if !boolean(do(t, cl, "PUT", e.u("/data/a/f.txt", "op", "RENAME", "destination", "/data/a/g.txt"), nil)) {
		t.Error("RENAME answered false")
	}
	if got := readLocal(t, filepath.Join(e.dir, "a", "g.txt")); string(got) != "f" {
		t.Errorf("renamed file holds %q", got)
	}
	writeFile(t, filepath.Join(e.dir, "a", "h.txt"), []byte("h"))
	for name, c := range map[string]struct{ src, dst string }{
		"missing source":          {"/data/a/none", "/data/a/x"},
		"existing file":           {"/data/a/g.txt", "/data/a/h.txt"},
		"missing parent":          {"/data/a/g.txt", "/data/zz/top/x"},
		"into itself":             {"/data/a", "/data/a/b/inner"},
		"into a dir holding name": {"/data/a/h.txt", "/data/a"},
	} {
		if boolean(do(t, cl, "PUT", e.u(c.src, "op", "RENAME", "destination", c.dst), nil)) {
			t.Errorf("RENAME %s (%s → %s) answered true", name, c.src, c.dst)
		}
	}
	// A directory destination receives the source under its own name.
	if !boolean(do(t, cl, "PUT", e.u("/data/a/h.txt", "op", "RENAME", "destination", "/data/a/b"), nil)) {
		t.Error("RENAME into a directory answered false")
	}
	if got := readLocal(t, filepath.Join(e.dir, "a", "b", "h.txt")); string(got) != "h" {
		t.Errorf("moved into the directory: %q", got)
	}
	if !boolean(do(t, cl, "PUT", e.u("/data/a/g.txt", "op", "RENAME", "destination", "/data/a/g.txt"), nil)) {
		t.Error("RENAME onto itself answered false")
	}
	wantRemote(t, do(t, cl, "PUT", e.u("/data/a/g.txt", "op", "RENAME", "destination", "/other/g.txt"), nil), 400, "UnsupportedOperationException", "different mounts")
	wantRemote(t, do(t, cl, "PUT", e.u("/data", "op", "RENAME", "destination", "/elsewhere"), nil), 400, "UnsupportedOperationException", "mount point")
	wantRemote(t, do(t, cl, "PUT", e.u("/data/a/g.txt", "op", "RENAME"), nil), 400, "IllegalArgumentException", "destination")
	wantRemote(t, do(t, cl, "PUT", e.u("/data/a/g.txt", "op", "RENAME", "destination", "relative"), nil), 400, "IllegalArgumentException", "absolute")
	wantRemote(t, do(t, cl, "PUT", e.u("/data/a/g.txt", "op", "RENAME", "destination", "/data/../etc"), nil), 400, "IllegalArgumentException", "Invalid path name")

	// DELETE.
	wantRemote(t, do(t, cl, "DELETE", e.u("/data/a", "op", "DELETE"), nil), 403, "PathIsNotEmptyDirectoryException", "/data/a is non empty")
	if !boolean(do(t, cl, "DELETE", e.u("/data/a/g.txt", "op", "DELETE"), nil)) {
		t.Error("DELETE of a file answered false")
	}
	if boolean(do(t, cl, "DELETE", e.u("/data/a/g.txt", "op", "DELETE"), nil)) {
		t.Error("DELETE of a missing file answered true")
	}
	if !boolean(do(t, cl, "DELETE", e.u("/data/a", "op", "DELETE", "recursive", "true"), nil)) {
		t.Error("recursive DELETE answered false")
	}
	if _, err := os.Stat(filepath.Join(e.dir, "a")); !os.IsNotExist(err) {
		t.Errorf("recursive DELETE left %v", err)
	}
	if err := os.Mkdir(filepath.Join(e.dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	if !boolean(do(t, cl, "DELETE", e.u("/data/empty", "op", "DELETE"), nil)) {
		t.Error("DELETE of an empty directory answered false")
	}
	wantRemote(t, do(t, cl, "DELETE", e.u("/data", "op", "DELETE", "recursive", "true"), nil), 400, "UnsupportedOperationException", "mount point")
	wantRemote(t, do(t, cl, "DELETE", e.u("/", "op", "DELETE", "recursive", "true"), nil), 400, "UnsupportedOperationException")
	writeFile(t, filepath.Join(e.ro, "keep"), []byte("k"))
	wantRemote(t, do(t, cl, "DELETE", e.u("/ro/keep", "op", "DELETE"), nil), 403, "AccessControlException", "read-only")
}

// TestUnsupportedAndBadInput checks the operations Strata does not
// implement and malformed requests: every answer a RemoteException with
// Hadoop's status.
func TestUnsupportedAndBadInput(t *testing.T) {
	e := startEnv(t, nil)
	cl := e.client(t, e.admin)
	writeFile(t, filepath.Join(e.dir, "f"), []byte("f"))
	for _, op := range []string{"SETPERMISSION", "SETOWNER", "SETTIMES", "SETREPLICATION"} {
		wantRemote(t, do(t, cl, "PUT", e.u("/data/f", "op", op, "permission", "600", "owner", "bob", "modificationtime", "5"), nil), 400, "UnsupportedOperationException", op+" is not supported")
		wantRemote(t, do(t, cl, "PUT", e.u("/data/none", "op", op), nil), 404, "FileNotFoundException")
	}
	wantRemote(t, do(t, cl, "GET", e.u("/data/f", "op", "GETDELEGATIONTOKEN"), nil), 400, "UnsupportedOperationException", "GETDELEGATIONTOKEN")
	wantRemote(t, do(t, cl, "POST", e.u("/data/f", "op", "CONCAT"), nil), 400, "UnsupportedOperationException")
	wantRemote(t, do(t, cl, "GET", e.u("/data/f", "op", "FROBNICATE"), nil), 400, "IllegalArgumentException", "No enum constant GetOpParam.Op FROBNICATE")
	wantRemote(t, do(t, cl, "GET", e.u("/data/f", "op", "GETSERVERDEFAULTS"), nil), 400, "IllegalArgumentException", "GETSERVERDEFAULTS")
	wantRemote(t, do(t, cl, "GET", e.u("/data/f", "op", "MKDIRS"), nil), 400, "IllegalArgumentException", "GetOpParam.Op MKDIRS")
	wantRemote(t, do(t, cl, "PATCH", e.u("/data/f", "op", "MKDIRS"), nil), 400, "IllegalArgumentException")
	wantRemote(t, do(t, cl, "GET", e.u("/data/f"), nil), 400, "IllegalArgumentException", `"op" is missing`)
	wantRemote(t, do(t, cl, "GET", e.base+"/data/f?op=OPEN&op=LISTSTATUS", nil), 400, "IllegalArgumentException", "more than once")
	wantRemote(t, do(t, cl, "GET", e.base+"/data/f?op=GETFILESTATUS&offset=%zz", nil), 400, "IllegalArgumentException", "Malformed query")
	for _, p := range []string{"/data/../etc/passwd", "/data/a/..", "/data/%00x", "/data/%ff"} {
		wantRemote(t, do(t, cl, "GET", e.base+p+"?op=GETFILESTATUS", nil), 400, "IllegalArgumentException", "Invalid path name")
	}
	wantRemote(t, do(t, cl, "GET", e.srv.URL()+"/webhdfs/v2/data?op=GETFILESTATUS", nil), 404, "FileNotFoundException", "/webhdfs/v1/")
	wantRemote(t, do(t, cl, "GET", e.srv.URL()+"/webhdfs/v1data?op=GETFILESTATUS", nil), 404, "FileNotFoundException")
	wantRemote(t, do(t, cl, "GET", e.srv.URL()+"/?op=GETFILESTATUS", nil), 404, "FileNotFoundException")
	wantRemote(t, do(t, cl, "DELETE", e.u("/data/f", "op", "DELETE", "recursive", "yes"), nil), 400, "IllegalArgumentException", "recursive")
	// A path without trailing elements and with dots cleans to the same path.
	if r := do(t, cl, "GET", e.base+"//data/./f/?op=GETFILESTATUS", nil); r.status != 200 {
		t.Errorf("unclean path: %d %s", r.status, r.body)
	}
	if r := do(t, cl, "GET", e.base+"?op=GETFILESTATUS", nil); r.status != 200 {
		t.Errorf("%s with no path: %d %s", Prefix, r.status, r.body)
	}
}
