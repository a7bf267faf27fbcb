package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// dropCaches writes dirty pages and empties the kernel's page, dentry and
// inode caches, so the next read reaches the file system's own cache.
func dropCaches() error {
	if err := exec.Command("sync").Run(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200); err != nil {
		return fmt.Errorf("drop the page cache (needs root): %w", err)
	}
	return nil
}

// readSeq reads path from start to end in 1 MiB requests and returns MB/s.
func readSeq(path string, want int64) (float64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	start := time.Now()
	n, err := io.CopyBuffer(io.Discard, onlyReader{f}, buf)
	el := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	if n != want {
		return 0, fmt.Errorf("read %s: %d bytes, want %d", path, n, want)
	}
	return float64(n) / 1e6 / el.Seconds(), nil
}

// onlyReader hides WriterTo so io.CopyBuffer uses the 1 MiB buffer.
type onlyReader struct{ io.Reader }

// parallel runs op(i, buf) for i in [0, n) on workers goroutines (each
// with its own 1 MiB buffer) and returns operations per second. The first
// error stops the run.
func parallel(n, workers int, op func(i int, buf []byte) error) (float64, error) {
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := op(i, buf); err != nil {
					once.Do(func() { firstErr = err })
					next.Store(int64(n)) // the others stop too
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(n) / el.Seconds(), nil
}

// readFiles reads every name below root with readers parallel readers and
// returns files/s.
func readFiles(root string, names []string, readers int, size int64) (float64, error) {
	return parallel(len(names), readers, func(i int, buf []byte) error {
		return readWhole(filepath.Join(root, names[i]), buf, size)
	})
}

func readWhole(path string, buf []byte, want int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var n int64
	for {
		m, err := f.Read(buf)
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
	if n != want {
		return fmt.Errorf("read %s: %d bytes, want %d", path, n, want)
	}
	return nil
}

// statFiles stats every name below root with 4 parallel callers and returns
// stats/s.
func statFiles(root string, names []string) (float64, error) {
	return parallel(len(names), 4, func(i int, _ []byte) error {
		_, err := os.Stat(filepath.Join(root, names[i]))
		return err
	})
}

// lsLong runs coreutils `ls -l` on dir, checks it listed want entries and
// returns the seconds it took.
func lsLong(ctx context.Context, dir string, want int) (float64, error) {
	cmd := exec.CommandContext(ctx, "ls", "-l", dir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	el := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("ls -l %s: %w: %s", dir, err, strings.TrimSpace(errb.String()))
	}
	lines := 0
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "total ") {
			lines++
		}
	}
	if lines != want {
		return 0, fmt.Errorf("ls -l %s: %d entries, want %d", dir, lines, want)
	}
	return el.Seconds(), nil
}

// debianPython is the interpreter that has Debian's python3-torch (a
// python3 earlier in PATH, such as pyenv's, may not).
const debianPython = "/usr/bin/python3"

//go:embed dataloader.py
var dataloaderPy []byte

// dataLoader runs a PyTorch DataLoader (num_workers=4) over names below
// root in another process and returns samples/s. The interpreter's start-up
// and the torch import are not counted.
func dataLoader(ctx context.Context, scratch, root string, names []string, size int, seed int64) (float64, error) {
	script := filepath.Join(scratch, "dataloader.py")
	if err := os.WriteFile(script, dataloaderPy, 0o644); err != nil {
		return 0, err
	}
	list := filepath.Join(scratch, "names.txt")
	if err := os.WriteFile(list, []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, debianPython, script, root, list, fmt.Sprint(size), fmt.Sprint(seed))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("dataloader: %w: %s", err, tail(errb.String(), 400))
	}
	var r struct {
		Samples int     `json:"samples"`
		Seconds float64 `json:"seconds"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &r); err != nil {
		return 0, fmt.Errorf("dataloader: output %q: %w", out.String(), err)
	}
	if r.Samples != len(names) {
		return 0, fmt.Errorf("dataloader: %d samples, want %d", r.Samples, len(names))
	}
	return float64(r.Samples) / r.Seconds, nil
}

// getObject streams one object in 1 MiB reads and returns MB/s.
func getObject(ctx context.Context, c *s3.Client, bucket, key string, want int64) (float64, error) {
	start := time.Now()
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", key, err)
	}
	defer out.Body.Close()
	n, err := io.CopyBuffer(io.Discard, onlyReader{out.Body}, make([]byte, 1<<20))
	el := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", key, err)
	}
	if n != want {
		return 0, fmt.Errorf("GET %s: %d bytes, want %d", key, n, want)
	}
	return float64(n) / 1e6 / el.Seconds(), nil
}

// getObjects GETs ops objects (keys round-robin) with conc parallel clients
// and returns operations/s.
func getObjects(ctx context.Context, c *s3.Client, bucket string, keys []string, ops, conc int, size int64) (float64, error) {
	return parallel(ops, conc, func(i int, buf []byte) error {
		return getInto(ctx, c, bucket, keys[i%len(keys)], buf, size)
	})
}

func getInto(ctx context.Context, c *s3.Client, bucket, key string, buf []byte, want int64) error {
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return fmt.Errorf("GET %s: %w", key, err)
	}
	defer out.Body.Close()
	n, err := io.CopyBuffer(io.Discard, onlyReader{out.Body}, buf)
	if err != nil {
		return fmt.Errorf("GET %s: %w", key, err)
	}
	if n != want {
		return fmt.Errorf("GET %s: %d bytes, want %d", key, n, want)
	}
	return nil
}

// errNotApplicable marks a workload a system does not take part in.
var errNotApplicable = errors.New("not applicable")

func tail(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
