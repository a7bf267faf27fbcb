package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Dataset is the fixed data every system is measured on. Its content is a
// function of Seed and the file name, so every run of the suite reads the
// same bytes.
type Dataset struct {
	Seed        int64
	BigSize     int64 // big/big.bin
	SmallFiles  int   // small/dNN/fNNNNN.bin
	SmallDirs   int
	SmallSize   int
	MetaEntries int // meta/eNNNNN (a flat directory)
	MetaSize    int
	S3Large     int // s3/1m/oNNNN
	S3LargeSize int
	S3Small     int // s3/4k/oNNNN
	S3SmallSize int

	// Local is the copy on the local disk (the physical ceiling and the
	// loopback mount's source).
	Local string
}

// NewDataset returns the dataset shrunk by scale (1 is full size).
func NewDataset(seed int64, scale float64, local string) *Dataset {
	n := func(v int) int { return max(1, int(float64(v)*scale)) }
	return &Dataset{
		Seed:        seed,
		BigSize:     int64(max(1, scale*1024)) << 20,
		SmallFiles:  n(5000),
		SmallDirs:   min(50, n(5000)),
		SmallSize:   128 << 10,
		MetaEntries: n(10000),
		MetaSize:    256,
		S3Large:     n(64),
		S3LargeSize: 1 << 20,
		S3Small:     n(256),
		S3SmallSize: 4 << 10,
		Local:       local,
	}
}

// BigName is the big file's path below the dataset root.
const BigName = "big/big.bin"

// MetaDir is the flat directory of the metadata workload.
const MetaDir = "meta"

// SmallNames returns the small files' paths below the dataset root.
func (d *Dataset) SmallNames() []string {
	names := make([]string, d.SmallFiles)
	for i := range names {
		names[i] = fmt.Sprintf("small/d%02d/f%05d.bin", i%d.SmallDirs, i)
	}
	return names
}

// SmallBytes is the size of the small set.
func (d *Dataset) SmallBytes() int64 { return int64(d.SmallFiles) * int64(d.SmallSize) }

// S3Keys returns the object keys of the S3 workload with one object size.
func (d *Dataset) S3Keys(large bool) []string {
	n, dir := d.S3Small, "s3/4k"
	if large {
		n, dir = d.S3Large, "s3/1m"
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s/o%04d", dir, i)
	}
	return keys
}

type fileSpec struct {
	name string
	size int64
}

func (d *Dataset) files() []fileSpec {
	fs := []fileSpec{{BigName, d.BigSize}}
	for _, n := range d.SmallNames() {
		fs = append(fs, fileSpec{n, int64(d.SmallSize)})
	}
	for i := range d.MetaEntries {
		fs = append(fs, fileSpec{fmt.Sprintf("%s/e%05d", MetaDir, i), int64(d.MetaSize)})
	}
	for _, k := range d.S3Keys(true) {
		fs = append(fs, fileSpec{k, int64(d.S3LargeSize)})
	}
	for _, k := range d.S3Keys(false) {
		fs = append(fs, fileSpec{k, int64(d.S3SmallSize)})
	}
	return fs
}

// content returns a reader of a file's deterministic bytes.
func (d *Dataset) content(name string, size int64) io.Reader {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(d.Seed))
	binary.LittleEndian.PutUint64(seed[8:], h.Sum64())
	return io.LimitReader(rand.NewChaCha8(seed), size)
}

// Generate writes the local copy and uploads every file to the bucket.
func (d *Dataset) Generate(ctx context.Context, c *s3.Client, bucket string, logf func(string, ...any)) error {
	files := d.files()
	var total int64
	for _, f := range files {
		total += f.size
	}
	logf("dataset: %d files, %.0f MiB, seed %d", len(files), float64(total)/(1<<20), d.Seed)
	work := make(chan fileSpec)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range work {
				if err := d.put(ctx, c, bucket, f); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}
		}()
	}
	for _, f := range files {
		work <- f
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	return nil
}

func (d *Dataset) put(ctx context.Context, c *s3.Client, bucket string, f fileSpec) error {
	p := filepath.Join(d.Local, filepath.FromSlash(f.name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	out, err := os.Create(p)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, d.content(f.name, f.size)); err != nil {
		out.Close()
		return fmt.Errorf("dataset: write %s: %w", p, err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	in, err := os.Open(p)
	if err != nil {
		return err
	}
	defer in.Close()
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(f.name), Body: in, ContentLength: aws.Int64(f.size)})
	if err != nil {
		return fmt.Errorf("dataset: upload %s: %w", f.name, err)
	}
	return nil
}
