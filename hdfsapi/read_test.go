package hdfsapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stratafs/strata/conf"
)

// statusKeys are the fields of Hadoop's FileStatus, in its order.
var statusKeys = []string{"accessTime", "blockSize", "childrenNum", "fileId", "group", "length", "modificationTime",
	"owner", "pathSuffix", "permission", "replication", "storagePolicy", "type"}

// checkStatus checks the shape of one FileStatus object and returns it.
func checkStatus(t *testing.T, v any) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("FileStatus %v is not an object", v)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !reflect.DeepEqual(keys, statusKeys) {
		t.Fatalf("FileStatus keys %v, want %v", keys, statusKeys)
	}
	return m
}

// TestFileStatusAndListings checks GETFILESTATUS, LISTSTATUS,
// LISTSTATUS_BATCH (paged), GETCONTENTSUMMARY, GETHOMEDIRECTORY and
// GETACLSTATUS: Hadoop's JSON shapes and values.
func TestFileStatusAndListings(t *testing.T) {
	e := startEnv(t, func(cfg *conf.Config) { cfg.HDFS.ListBatchSize = 2 })
	cl := e.client(t, e.reader)
	writeFile(t, filepath.Join(e.dir, "dir", "b.txt"), []byte("bbbb"))
	writeFile(t, filepath.Join(e.dir, "dir", "a.txt"), []byte("a"))
	writeFile(t, filepath.Join(e.dir, "dir", "c", "deep.bin"), make([]byte, 1000))
	writeFile(t, filepath.Join(e.dir, "dir", "e.txt"), []byte("eeeee"))
	writeFile(t, filepath.Join(e.dir, "dir", "d.txt"), []byte("dd"))
	writeFile(t, filepath.Join(e.ro, "r.txt"), []byte("read only"))

	r := do(t, cl, "GET", e.u("/data/dir/b.txt", "op", "GETFILESTATUS"), nil)
	if r.status != 200 {
		t.Fatalf("GETFILESTATUS: %d %s", r.status, r.body)
	}
	st := checkStatus(t, r.json(t)["FileStatus"])
	if st["type"] != "FILE" || st["length"] != 4.0 || st["pathSuffix"] != "" || st["permission"] != "644" ||
		st["blockSize"] != float64(e.cfg.Worker.BlockSize) || st["replication"] != 1.0 || st["owner"] != Owner ||
		st["modificationTime"].(float64) <= 0 || st["accessTime"] != st["modificationTime"] || st["fileId"] != float64(fileID("/data/dir/b.txt")) {
		t.Errorf("file status %v", st)
	}
	for path, perm := range map[string]string{"/data/dir": "755", "/data": "755", "/": "555", "/ro": "555"} {
		r := do(t, cl, "GET", e.u(path, "op", "GETFILESTATUS"), nil)
		st := checkStatus(t, r.json(t)["FileStatus"])
		if st["type"] != "DIRECTORY" || st["length"] != 0.0 || st["permission"] != perm || st["blockSize"] != 0.0 || st["replication"] != 0.0 {
			t.Errorf("%s: %v", path, st)
		}
	}
	r = do(t, cl, "GET", e.u("/ro/r.txt", "op", "GETFILESTATUS"), nil)
	if st := checkStatus(t, r.json(t)["FileStatus"]); st["permission"] != "444" {
		t.Errorf("file of a read-only mount: %v", st)
	}
	if st := checkStatus(t, do(t, cl, "GET", e.u("/", "op", "GETFILESTATUS"), nil).json(t)["FileStatus"]); st["fileId"] != float64(rootInodeID) {
		t.Errorf("root: %v", st)
	}
	wantRemote(t, do(t, cl, "GET", e.u("/data/nope", "op", "GETFILESTATUS"), nil), 404, "FileNotFoundException", "File does not exist: /data/nope")
	wantRemote(t, do(t, cl, "GET", e.u("/nomount/x", "op", "GETFILESTATUS"), nil), 404, "FileNotFoundException", "/nomount/x")

	// LISTSTATUS: sorted by name; a file lists as itself.
	r = do(t, cl, "GET", e.u("/data/dir", "op", "LISTSTATUS"), nil)
	var list struct {
		FileStatuses struct{ FileStatus []map[string]any }
	}
	if err := json.Unmarshal(r.body, &list); err != nil || r.status != 200 {
		t.Fatalf("LISTSTATUS: %d %s", r.status, r.body)
	}
	var names []string
	for _, s := range list.FileStatuses.FileStatus {
		checkStatus(t, s)
		names = append(names, s["pathSuffix"].(string))
	}
	if want := []string{"a.txt", "b.txt", "c", "d.txt", "e.txt"}; !reflect.DeepEqual(names, want) {
		t.Errorf("LISTSTATUS names %v, want %v", names, want)
	}
	if list.FileStatuses.FileStatus[2]["type"] != "DIRECTORY" {
		t.Errorf("c: %v", list.FileStatuses.FileStatus[2])
	}
	r = do(t, cl, "GET", e.u("/data/dir/a.txt", "op", "LISTSTATUS"), nil)
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.FileStatuses.FileStatus) != 1 || list.FileStatuses.FileStatus[0]["pathSuffix"] != "" {
		t.Errorf("LISTSTATUS of a file: %s", r.body)
	}
	r = do(t, cl, "GET", e.u("/", "op", "LISTSTATUS"), nil)
	if !bytes.Contains(r.body, []byte(`"pathSuffix":"data"`)) || !bytes.Contains(r.body, []byte(`"pathSuffix":"ro"`)) {
		t.Errorf("LISTSTATUS /: %s", r.body)
	}
	wantRemote(t, do(t, cl, "GET", e.u("/data/none", "op", "LISTSTATUS"), nil), 404, "FileNotFoundException", "/data/none")

	// LISTSTATUS_BATCH: pages of 2 with startAfter and remainingEntries.
	var got []string
	after := ""
	for page := 0; ; page++ {
		kv := []string{"op", "LISTSTATUS_BATCH"}
		if after != "" {
			kv = append(kv, "startAfter", after)
		}
		r := do(t, cl, "GET", e.u("/data/dir", kv...), nil)
		var b struct {
			DirectoryListing struct {
				PartialListing struct {
					FileStatuses struct{ FileStatus []map[string]any }
				} `json:"partialListing"`
				RemainingEntries int `json:"remainingEntries"`
			}
		}
		if err := json.Unmarshal(r.body, &b); err != nil || r.status != 200 {
			t.Fatalf("LISTSTATUS_BATCH: %d %s", r.status, r.body)
		}
		entries := b.DirectoryListing.PartialListing.FileStatuses.FileStatus
		if len(entries) > 2 || page > 3 {
			t.Fatalf("page %d has %d entries", page, len(entries))
		}
		for _, s := range entries {
			got = append(got, checkStatus(t, s)["pathSuffix"].(string))
		}
		if want := 5 - len(got); b.DirectoryListing.RemainingEntries != want {
			t.Errorf("page %d: remainingEntries %d, want %d", page, b.DirectoryListing.RemainingEntries, want)
		}
		if b.DirectoryListing.RemainingEntries == 0 {
			break
		}
		after = got[len(got)-1]
	}
	if want := []string{"a.txt", "b.txt", "c", "d.txt", "e.txt"}; !reflect.DeepEqual(got, want) {
		t.Errorf("batches %v, want %v", got, want)
	}
	wantRemote(t, do(t, cl, "GET", e.u("/data/dir", "op", "LISTSTATUS_BATCH", "startAfter", "../x"), nil), 400, "IllegalArgumentException", "startafter")

	// GETCONTENTSUMMARY: the directory itself counts.
	r = do(t, cl, "GET", e.u("/data/dir", "op", "GETCONTENTSUMMARY"), nil)
	cs, _ := r.json(t)["ContentSummary"].(map[string]any)
	if cs["directoryCount"] != 2.0 || cs["fileCount"] != 5.0 || cs["length"] != 1012.0 || cs["quota"] != -1.0 || cs["spaceQuota"] != -1.0 || cs["spaceConsumed"] != 1012.0 {
		t.Errorf("content summary %s", r.body)
	}
	r = do(t, cl, "GET", e.u("/data/dir/e.txt", "op", "GETCONTENTSUMMARY"), nil)
	if cs, _ := r.json(t)["ContentSummary"].(map[string]any); cs["directoryCount"] != 0.0 || cs["fileCount"] != 1.0 || cs["length"] != 5.0 {
		t.Errorf("content summary of a file %s", r.body)
	}

	r = do(t, cl, "GET", e.u("/", "op", "GETHOMEDIRECTORY", "user.name", "bob"), nil)
	if r.json(t)["Path"] != "/user/bob" {
		t.Errorf("GETHOMEDIRECTORY %s", r.body)
	}
	r = do(t, cl, "GET", e.u("/data/dir", "op", "GETACLSTATUS"), nil)
	if acl, _ := r.json(t)["AclStatus"].(map[string]any); acl["permission"] != "755" || acl["owner"] != Owner || acl["stickyBit"] != false {
		t.Errorf("GETACLSTATUS %s", r.body)
	}
	if n := testutil.ToFloat64(e.srv.metrics.requests.WithLabelValues("LISTSTATUS_BATCH", "200")); n != 3 {
		t.Errorf("requests_total{LISTSTATUS_BATCH,200} = %v", n)
	}
}

// TestOpen checks OPEN: the redirect to the data URL (token and parameters
// kept), noredirect, offset/length ranges across read chunks, the end of
// the file, offset past EOF, directories and bad numbers.
func TestOpen(t *testing.T) {
	e := startEnv(t, nil)
	cl := e.client(t, nil)
	tok := token(t, e.reader)
	data := pattern(2*readChunk+12345, 1)
	writeFile(t, filepath.Join(e.dir, "big.bin"), data)

	r := do(t, cl, "GET", e.u("/data/big.bin", "op", "OPEN", "delegation", tok, "offset", "5", "user.name", "x"), nil)
	loc := r.header.Get("Location")
	if r.status != http.StatusTemporaryRedirect || !strings.HasPrefix(loc, e.base+"/data/big.bin?") {
		t.Fatalf("OPEN: %d %q", r.status, loc)
	}
	for _, want := range []string{"datanode=true", "op=OPEN", "offset=5", "user.name=x", "delegation=" + tok} {
		if !strings.Contains(loc, want) {
			t.Errorf("Location %q lacks %q", loc, want)
		}
	}
	if got := do(t, cl, "GET", loc, nil); got.status != 200 || !bytes.Equal(got.body, data[5:]) || got.header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("data URL: %d, %d bytes", got.status, len(got.body))
	}
	r = do(t, cl, "GET", e.u("/data/big.bin", "op", "OPEN", "delegation", tok, "noredirect", "true"), nil)
	if l, _ := r.json(t)["Location"].(string); r.status != 200 || !strings.Contains(l, "datanode=true") || strings.Contains(l, "noredirect") {
		t.Errorf("noredirect: %d %s", r.status, r.body)
	}
	size := int64(len(data))
	for _, c := range []struct{ off, length int64 }{
		{0, -1}, {0, 1}, {readChunk - 3, 10}, {readChunk - 1, readChunk + 2}, {size - 7, -1}, {size - 7, 100}, {size, -1}, {size, 5}, {3, 0},
	} {
		kv := []string{"op", "OPEN", "delegation", tok, "offset", strconv.FormatInt(c.off, 10)}
		if c.length >= 0 {
			kv = append(kv, "length", strconv.FormatInt(c.length, 10))
		}
		got := follow(t, cl, "GET", e.u("/data/big.bin", kv...), nil)
		end := size
		if c.length >= 0 {
			end = min(size, c.off+c.length)
		}
		if got.status != 200 || !bytes.Equal(got.body, data[c.off:end]) || got.header.Get("Content-Length") != strconv.FormatInt(end-c.off, 10) {
			t.Errorf("offset %d length %d: %d, %d bytes, want %d", c.off, c.length, got.status, len(got.body), end-c.off)
		}
	}
	past := e.u("/data/big.bin", "op", "OPEN", "delegation", tok, "offset", fmt.Sprint(size+1))
	wantRemote(t, do(t, cl, "GET", past, nil), 403, "EOFException", "Cannot seek after EOF")
	wantRemote(t, do(t, cl, "GET", past+"&datanode=true", nil), 403, "EOFException")
	wantRemote(t, do(t, cl, "GET", e.u("/data", "op", "OPEN", "delegation", tok), nil), 404, "FileNotFoundException", "Path is not a file: /data")
	wantRemote(t, do(t, cl, "GET", e.u("/data/none", "op", "OPEN", "delegation", tok, "datanode", "true"), nil), 404, "FileNotFoundException")
	wantRemote(t, do(t, cl, "GET", e.u("/data/big.bin", "op", "OPEN", "delegation", tok, "offset", "-1"), nil), 400, "IllegalArgumentException", "offset")
	wantRemote(t, do(t, cl, "GET", e.u("/data/big.bin", "op", "OPEN", "delegation", tok, "length", "x"), nil), 400, "IllegalArgumentException", "length")
	wantRemote(t, do(t, cl, "GET", e.u("/data/big.bin", "op", "OPEN", "delegation", tok, "buffersize", "0"), nil), 400, "IllegalArgumentException", "buffersize")
	if got := follow(t, cl, "GET", e.u("/data/big.bin", "op", "open", "delegation", tok, "BufferSize", "4096", "length", "3"), nil); got.status != 200 || !bytes.Equal(got.body, data[:3]) {
		t.Errorf("lower-case op, parameter names in any case: %d %q", got.status, got.body)
	}
}

// TestFileChecksum checks GETFILECHECKSUM over HTTP: redirected to the data
// URL as by a namenode, with the checksum an HDFS cluster computes.
func TestFileChecksum(t *testing.T) {
	e := startEnv(t, nil)
	cl := e.client(t, e.admin)
	writeFile(t, filepath.Join(e.dir, "hello.txt"), []byte("hello\n"))
	writeFile(t, filepath.Join(e.dir, "empty"), nil)
	data := pattern(readChunk+999, 2)
	writeFile(t, filepath.Join(e.dir, "big"), data)
	for path, want := range map[string]fileChecksum{
		"/data/hello.txt": {"MD5-of-0MD5-of-512CRC32C", "0000020000000000000000002b559725e23eb93541b0675b41e25ab300000000", 28},
		"/data/empty":     {"MD5-of-0MD5-of-0CRC32", "00000000000000000000000070bc8f4b72a86921468bf8e8441dce5100000000", 28},
		"/data/big":       checksumOfBytes(data, hdfsChecksumBlockSize),
	} {
		r := follow(t, cl, "GET", e.u(path, "op", "GETFILECHECKSUM"), nil)
		var got struct{ FileChecksum fileChecksum }
		if err := json.Unmarshal(r.body, &got); err != nil || r.status != 200 || got.FileChecksum != want {
			t.Errorf("%s: %d %s, want %+v", path, r.status, r.body, want)
		}
	}
	wantRemote(t, do(t, cl, "GET", e.u("/data", "op", "GETFILECHECKSUM"), nil), 404, "FileNotFoundException", "Path is not a file")
	wantRemote(t, do(t, cl, "GET", e.u("/data", "op", "GETFILECHECKSUM", "datanode", "true"), nil), 404, "FileNotFoundException", "Path is not a file")
	wantRemote(t, do(t, cl, "GET", e.u("/data/none", "op", "GETFILECHECKSUM"), nil), 404, "FileNotFoundException", "File does not exist: /data/none")
	r := do(t, cl, "GET", e.u("/data/hello.txt", "op", "GETFILECHECKSUM", "noredirect", "true"), nil)
	if l, _ := r.json(t)["Location"].(string); r.status != 200 || !strings.Contains(l, "op=GETFILECHECKSUM") || !strings.Contains(l, "datanode=true") {
		t.Errorf("GETFILECHECKSUM noredirect: %d %s", r.status, r.body)
	}
}
