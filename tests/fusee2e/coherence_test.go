package fusee2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/tests/testcluster"
)

// coherenceCluster mounts a bucket with no metadata caching (every open
// asks the UFS), so the tests see each change at once and the only caches
// left are the kernel's, which must follow the fingerprint.
func coherenceCluster(t *testing.T, files map[string][]byte) (dir, bucket string) {
	t.Helper()
	c := testcluster.Start(t, testcluster.Options{})
	bucket = minio.NewBucket(t, "coherence")
	putObjects(t, bucket, files)
	c.MustMount(t, "/data", "s3://"+bucket, minio.S3Options(), func(m *namespace.Mount) { m.MetadataTTL = 0 })
	srv := mount(t, c.Client, testConfig(t), "/")
	return filepath.Join(srv.Dir(), "data"), bucket
}

func version(b byte, n int) []byte { return bytes.Repeat([]byte{b}, n) }

// readAllAt reads fd from 0 to the size fstat gives: what a reader that
// trusts st_size does.
func readAllAt(t *testing.T, f *os.File) ([]byte, error) {
	t.Helper()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, st.Size())
	n, err := f.ReadAt(buf, 0)
	if n == len(buf) {
		err = nil
	}
	return buf[:n], err
}

// TestHeldHandleDoesNotPinLaterOpens: a handle kept open across a change in
// the bucket keeps its version (or gets ESTALE), and every later open reads
// the new bytes, whole, whether the object grew or shrank.
func TestHeldHandleDoesNotPinLaterOpens(t *testing.T) {
	v1 := version('a', 1000)
	dir, bucket := coherenceCluster(t, map[string][]byte{"grow": v1, "shrink": version('x', 3<<20)})
	for _, tc := range []struct {
		key    string
		v1, v2 []byte
	}{
		{"grow", v1, version('b', 3000)},
		{"shrink", version('x', 3<<20), version('y', 1500)},
	} {
		t.Run(tc.key, func(t *testing.T) {
			p := filepath.Join(dir, tc.key)
			held, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer held.Close()
			if got, err := readAllAt(t, held); err != nil || !bytes.Equal(got, tc.v1) {
				t.Fatalf("held handle before the change: %d bytes, %v", len(got), err)
			}
			if st, err := os.Stat(p); err != nil || st.Size() != int64(len(tc.v1)) {
				t.Fatalf("stat before the change: %v %v", st, err)
			}
			putObjects(t, bucket, map[string][]byte{tc.key: tc.v2})
			for i := range 3 {
				got, err := os.ReadFile(p)
				if err != nil || !bytes.Equal(got, tc.v2) {
					t.Fatalf("open %d after the change: %d bytes (want %d of the new version), %v", i, len(got), len(tc.v2), err)
				}
			}
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := readAllAt(t, f); err != nil || !bytes.Equal(got, tc.v2) {
				t.Errorf("fstat+pread of a new handle: %d bytes (want %d), %v", len(got), len(tc.v2), err)
			}
			f.Close()
			// The held handle: its own version, whole, or ESTALE; never the
			// other version's bytes or size.
			got, err := readAllAt(t, held)
			switch {
			case errors.Is(err, syscall.ESTALE):
			case err != nil:
				t.Errorf("held handle after the change: %v", err)
			case !bytes.Equal(got, tc.v1):
				t.Errorf("held handle after the change: %d bytes, not its version's %d", len(got), len(tc.v1))
			}
		})
	}
}

// TestHandlesShareWrites: writes made through the mount are seen at once by
// every handle of the file, those opened before the write included, before
// and after the upload.
func TestHandlesShareWrites(t *testing.T) {
	old := version('o', 2<<20+100)
	dir, bucket := coherenceCluster(t, map[string][]byte{"f": old})
	p := filepath.Join(dir, "f")
	ro, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rw, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	// Both read first: the kernel caches the old pages.
	for name, f := range map[string]*os.File{"ro": ro, "rw": rw} {
		if got, err := readAllAt(t, f); err != nil || !bytes.Equal(got, old) {
			t.Fatalf("%s before the write: %d bytes, %v", name, len(got), err)
		}
	}
	want := bytes.Clone(old)
	patch := []byte("NEW BYTES")
	copy(want[1<<20:], patch)
	if _, err := rw.WriteAt(patch, 1<<20); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for name, f := range map[string]*os.File{"ro": ro, "rw": rw} {
			got, err := readAllAt(t, f)
			if err != nil || !bytes.Equal(got, want) {
				i := 0
				for i < min(len(got), len(want)) && got[i] == want[i] {
					i++
				}
				t.Errorf("%s %s: %d bytes, %v; first difference at %d", name, when, len(got), err, i)
			}
		}
	}
	check("after the write")
	if err := rw.Sync(); err != nil {
		t.Fatal(err)
	}
	check("after fsync")
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := getObject(t, bucket, "f")
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("object after close: %d bytes, %v", len(got), err)
	}
	if got, err := readAllAt(t, ro); err != nil || !bytes.Equal(got, want) {
		t.Errorf("ro after the writer closed: %d bytes, %v", len(got), err)
	}
	if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, want) {
		t.Errorf("a new open after the writer closed: %d bytes, %v", len(got), err)
	}
}

// TestNamespaceDetails: a name over NAME_MAX is refused with ENAMETOOLONG
// before anything exists; a directory's mtime moves when an entry is
// created or removed; a file being written is listed before its upload; an
// open file that was removed has nlink 0.
func TestNamespaceDetails(t *testing.T) {
	dir, bucket := coherenceCluster(t, map[string][]byte{"sub/keep": []byte("k")})
	sub := filepath.Join(dir, "sub")
	long := string(bytes.Repeat([]byte("n"), 256))
	if _, err := os.Create(filepath.Join(sub, long)); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("create of a 256-byte name: %v, want ENAMETOOLONG", err)
	}
	if err := os.Mkdir(filepath.Join(sub, long), 0o755); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("mkdir of a 256-byte name: %v, want ENAMETOOLONG", err)
	}
	if _, err := os.Stat(filepath.Join(sub, long)); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("stat of a 256-byte name: %v, want ENAMETOOLONG", err)
	}
	// The whole key of an object store is limited too (1,024 bytes in S3):
	// "sub/" and five 200-byte directories leave 15 bytes for a name.
	deep := sub
	for i := range 5 {
		deep = filepath.Join(deep, fmt.Sprintf("%0200d", i))
		if err := os.Mkdir(deep, 0o755); err != nil {
			t.Fatalf("mkdir level %d: %v", i, err)
		}
	}
	if err := os.Mkdir(filepath.Join(deep, "directory-name-20b"), 0o755); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("mkdir past the 1,024-byte key limit: %v, want ENAMETOOLONG", err)
	}
	if _, err := os.Create(filepath.Join(deep, "file-name-of-20-byte")); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("create past the 1,024-byte key limit: %v, want ENAMETOOLONG", err)
	}
	if err := os.WriteFile(filepath.Join(deep, "short.txt"), []byte("x"), 0o644); err != nil {
		t.Errorf("a key of 1,018 bytes: %v", err)
	}
	ok := string(bytes.Repeat([]byte("n"), 255))
	if err := os.WriteFile(filepath.Join(sub, ok), []byte("x"), 0o644); err != nil {
		t.Errorf("a 255-byte name: %v", err)
	}

	before, err := os.Stat(sub)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(sub, "new.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("not uploaded yet")); err != nil {
		t.Fatal(err)
	}
	after, err := os.Stat(sub)
	if err != nil {
		t.Fatal(err)
	}
	if !after.ModTime().After(before.ModTime()) {
		t.Errorf("directory mtime did not move on create: %v then %v", before.ModTime(), after.ModTime())
	}
	ents, err := os.ReadDir(sub)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, e := range ents {
		names[e.Name()] = true
	}
	if !names["new.txt"] || !names["keep"] {
		t.Errorf("listing while new.txt is being written: %v", names)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := getObject(t, bucket, "sub/new.txt"); err != nil || string(got) != "not uploaded yet" {
		t.Errorf("uploaded: %q %v", got, err)
	}

	held, err := os.Open(filepath.Join(sub, "keep"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	mt := after.ModTime()
	if err := os.Remove(filepath.Join(sub, "keep")); err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(held.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if st.Nlink != 0 {
		t.Errorf("nlink of a removed open file: %d, want 0", st.Nlink)
	}
	if d, err := os.Stat(sub); err != nil || d.ModTime().Before(mt) {
		t.Errorf("directory mtime after unlink: %v %v", d, err)
	}
}
