package fusee2e

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stratafs/strata/conf"
	"golang.org/x/sync/errgroup"
)

// sampleFiles is a small tree with edge sizes: empty, one page minus one,
// a page and a bit, several read-ahead windows with a short tail.
func sampleFiles(t testing.TB) map[string][]byte {
	return map[string][]byte{
		"README":              []byte("hello strata\n"),
		"empty":               {},
		"train/a.bin":         randBytes(t, 4095),
		"train/b.bin":         randBytes(t, 1<<20+3),
		"train/big.bin":       randBytes(t, 20<<20+12345),
		"train/sub dir/ü.txt": []byte("unicode name\n"),
		"val/x.bin":           randBytes(t, 64<<10),
	}
}

func TestCoreutils(t *testing.T) {
	files := sampleFiles(t)
	c, _ := newS3Cluster(t, files, nil)
	srv := mount(t, c.Client, testConfig(t), "/")
	mnt := srv.Dir()
	data := filepath.Join(mnt, "data")

	// The virtual root lists the mount.
	if got := strings.Fields(run(t, "ls", mnt)); !slices.Equal(got, []string{"data"}) {
		t.Fatalf("ls %s = %v", mnt, got)
	}
	// find sees every file with its size.
	got := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(run(t, "find", data, "-type", "f", "-printf", "%P\t%s\n")), "\n") {
		name, size, _ := strings.Cut(line, "\t")
		got[name], _ = strconv.Atoi(size)
	}
	want := map[string]int{}
	for k, v := range files {
		want[k] = len(v)
	}
	if !maps.Equal(got, want) {
		t.Fatalf("find = %v\nwant %v", got, want)
	}
	// ls -lR lists them with sizes.
	lsOut := run(t, "ls", "-lR", data)
	for _, n := range []string{"big.bin", "ü.txt", "README"} {
		if !strings.Contains(lsOut, n) {
			t.Errorf("ls -lR does not list %s:\n%s", n, lsOut)
		}
	}
	if !strings.Contains(lsOut, strconv.Itoa(len(files["train/big.bin"]))) {
		t.Errorf("ls -lR does not show the size of big.bin:\n%s", lsOut)
	}
	// sha256sum of every file.
	var paths []string
	for k := range files {
		paths = append(paths, filepath.Join(data, k))
	}
	slices.Sort(paths)
	for _, line := range strings.Split(strings.TrimSpace(run(t, "sha256sum", paths...)), "\n") {
		sum, p, _ := strings.Cut(line, "  ")
		rel, _ := filepath.Rel(data, p)
		if sum != sha(files[rel]) {
			t.Errorf("sha256sum %s = %s, want %s", rel, sum, sha(files[rel]))
		}
	}
	// cat and dd of a range.
	if out := run(t, "cat", filepath.Join(data, "README")); out != string(files["README"]) {
		t.Errorf("cat README = %q", out)
	}
	out := run(t, "dd", "if="+filepath.Join(data, "train/big.bin"), "bs=1M", "skip=5", "count=3", "status=none")
	if !bytes.Equal([]byte(out), files["train/big.bin"][5<<20:8<<20]) {
		t.Errorf("dd skip=5 count=3: %d bytes, wrong content", len(out))
	}
	// cp -r copies the tree byte for byte.
	dst := filepath.Join(t.TempDir(), "copy")
	run(t, "cp", "-r", data, dst)
	for k, v := range files {
		b, err := os.ReadFile(filepath.Join(dst, k))
		if err != nil || !bytes.Equal(b, v) {
			t.Errorf("cp -r: %s: %d bytes, %v", k, len(b), err)
		}
	}
	if st := srv.Stats(); st.DaemonOpens == 0 || st.PassthroughOpens != 0 {
		t.Errorf("stats = %+v: want daemon opens only (no local worker)", st)
	}
}

// TestConcurrentReaders reads the same and different files from many
// goroutines at random offsets and sizes, sequentially and not, and checks
// every byte.
func TestConcurrentReaders(t *testing.T) {
	files := map[string][]byte{}
	for i := range 6 {
		files[fmt.Sprintf("f%d.bin", i)] = randBytes(t, 3<<20+i*777_777)
	}
	cfg := testConfig(t)
	cfg.ReadAhead = 1 << 20 // small windows: many window switches
	cfg.ReadAheadBudget = 6 << 20
	c, _ := newS3Cluster(t, files, func(cfg *conf.Config) {
		cfg.Worker.BlockSize = 1 << 20 // many blocks per file
	})
	srv := mount(t, c.Client, cfg, "/data")
	names := slices.Sorted(maps.Keys(files))

	var g errgroup.Group
	for r := range 16 {
		g.Go(func() error {
			rng := rand.New(rand.NewPCG(uint64(r), 7))
			name := names[r%len(names)]
			want := files[name]
			f, err := os.Open(filepath.Join(srv.Dir(), name))
			if err != nil {
				return err
			}
			defer f.Close()
			if r%2 == 0 { // sequential, odd buffer size
				got, err := io.ReadAll(bufioReader(f, 100_000+r))
				if err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				if !bytes.Equal(got, want) {
					return fmt.Errorf("%s: sequential read differs (%d bytes)", name, len(got))
				}
				return nil
			}
			buf := make([]byte, 300_000)
			for range 60 {
				off := rng.Int64N(int64(len(want)))
				n := rng.IntN(len(buf)) + 1
				k, err := f.ReadAt(buf[:n], off)
				if err != nil && err != io.EOF {
					return fmt.Errorf("%s at %d: %w", name, off, err)
				}
				if !bytes.Equal(buf[:k], want[off:min(off+int64(n), int64(len(want)))]) {
					return fmt.Errorf("%s: %d bytes at %d differ", name, n, off)
				}
			}
			return nil
		})
	}
	// Whole-file reads of every file at once, from fresh opens.
	var mu sync.Mutex
	seen := 0
	for _, name := range names {
		g.Go(func() error {
			b, err := os.ReadFile(filepath.Join(srv.Dir(), name))
			if err != nil {
				return err
			}
			if !bytes.Equal(b, files[name]) {
				return fmt.Errorf("%s: ReadFile differs", name)
			}
			mu.Lock()
			seen++
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	if seen != len(names) {
		t.Fatalf("read %d files, want %d", seen, len(names))
	}
	if st := srv.Stats(); st.ReadAheadWindows == 0 {
		t.Errorf("stats = %+v: sequential readers used no read-ahead", st)
	}
}

// bufioReader reads f in chunks of size bytes (not a power of two, to cross
// page and window boundaries at odd places).
func bufioReader(f *os.File, size int) io.Reader {
	return &chunkReader{f: f, buf: make([]byte, size)}
}

type chunkReader struct {
	f    *os.File
	buf  []byte
	data []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		n, err := c.f.Read(c.buf)
		if n == 0 {
			return 0, err
		}
		c.data = c.buf[:n]
	}
	n := copy(p, c.data)
	c.data = c.data[n:]
	return n, nil
}
