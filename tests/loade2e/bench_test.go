package loade2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// getConcurrency is the number of parallel GETs of the baseline: the
// worker's default ufs_concurrency, which bounds its fetches during a load.
const getConcurrency = 32

// rangeGET reads ranges of objects with getConcurrency GETs in flight and
// returns the bytes read.
// A range is (index in keys, offset, length); length 0 reads the whole
// object.
func rangeGET(b *testing.B, bucket string, keys []string, ranges [][3]int64) int64 {
	s3c := minio.S3Client(b)
	var n atomic.Int64
	work := make(chan [3]int64)
	var wg sync.WaitGroup
	errs := make(chan error, getConcurrency)
	for range getConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 256<<10)
			for r := range work {
				in := &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(keys[r[0]])}
				if r[2] > 0 {
					in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", r[1], r[1]+r[2]-1))
				}
				out, err := s3c.GetObject(context.Background(), in)
				if err != nil {
					errs <- err
					continue
				}
				m, err := io.CopyBuffer(io.Discard, out.Body, buf)
				out.Body.Close()
				if err != nil {
					errs <- err
				}
				n.Add(m)
			}
		}()
	}
	for _, r := range ranges {
		work <- r
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return n.Load()
}

// BenchmarkLoad compares `strata load` with the origin's own GET bandwidth
// at the same concurrency on the same machine: big files (1 MiB ranged
// GETs) and many small files (one GET each).
//
//	go test -run '^$' -bench Load -benchtime 1x ./tests/loade2e/
func BenchmarkLoad(b *testing.B) {
	for _, tc := range []struct {
		name  string
		files int
		size  int
	}{
		{"big-4x128MiB", 4, 128 << 20},
		{"small-100000x16KiB", 100000, 16 << 10},
	} {
		b.Run(tc.name, func(b *testing.B) { benchLoad(b, tc.files, tc.size) })
	}
}

func benchLoad(b *testing.B, files, size int) {
	c := startCluster(b, clusterOpts{workers: 1, coords: 1, workerMemory: "3GiB"})
	bucket := minio.NewBucket(b, "bench")
	sizes := map[string]int{}
	for i := range files {
		sizes[fmt.Sprintf("d%02d/f%06d", i%50, i)] = size
	}
	ds := upload(b, minio, bucket, sizes)
	var keys []string
	for k := range ds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	total := ds.bytes()
	var ranges [][3]int64
	for i := range keys {
		if size <= 1<<20 {
			ranges = append(ranges, [3]int64{int64(i), 0, 0})
			continue
		}
		for off := int64(0); off < int64(size); off += 1 << 20 {
			ranges = append(ranges, [3]int64{int64(i), off, 1 << 20})
		}
	}
	c.Mount("/b", bucket)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if got := rangeGET(b, bucket, keys, ranges); got != total {
			b.Fatalf("GET read %d bytes, want %d", got, total)
		}
		getSecs := time.Since(start).Seconds()

		cpu0 := cpuTimes(c)
		start = time.Now()
		j := parseJob(b, c.MustCLI("load", "/b", "--json"))
		cpu1 := cpuTimes(c)
		for k, v := range cpu1 {
			b.Logf("CPU time of %s during the load: %.2f s", k, v-cpu0[k])
		}
		wall := time.Since(start).Seconds()
		if j.State != "done" || j.Progress.BytesDone != total || j.Progress.UfsBytes != total {
			b.Fatalf("load: %+v", j.Progress)
		}
		jobSecs := float64(j.FinishedUnixMs-j.StartedUnixMs) / 1000
		c.MustCLI("free", "/b")

		mb := float64(total) / 1e6
		b.ReportMetric(mb/getSecs, "get_MB/s")
		b.ReportMetric(mb/jobSecs, "load_MB/s")
		b.ReportMetric(float64(files)/getSecs, "get_files/s")
		b.ReportMetric(float64(files)/jobSecs, "load_files/s")
		b.ReportMetric(getSecs/jobSecs, "load/get")
		b.Logf("%d files, %.0f MB: GET %.2f s (%.0f MB/s, %.0f files/s); load %.2f s in the job, %.2f s with the CLI (%.0f MB/s, %.0f files/s): %.2f× the GET rate",
			files, mb, getSecs, mb/getSecs, float64(files)/getSecs, jobSecs, wall, mb/jobSecs, float64(files)/jobSecs, getSecs/jobSecs)
	}
}

// cpuTimes reads the CPU seconds (user + system) MinIO and the cluster's
// processes used so far, from /proc: on a small machine they explain where a
// load's time goes.
func cpuTimes(c *testCluster) map[string]float64 {
	out := map[string]float64{}
	read := func(name string, pid int) {
		bs, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		f := strings.Fields(string(bs))
		if len(f) > 15 {
			u, _ := strconv.Atoi(f[13])
			s, _ := strconv.Atoi(f[14])
			out[name] = float64(u+s) / 100
		}
	}
	read("minio", minio.Cmd.Process.Pid)
	for n, p := range c.Coords {
		read(n, p.Cmd.Process.Pid)
	}
	for n, p := range c.Workers {
		read(n, p.Cmd.Process.Pid)
	}
	return out
}
