package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// workloads holds the tables the suite fills.
type workloads struct {
	d                                        *Dataset
	big, small, ls, stat, dl, preload, s3big *Workload
	s3small                                  *Workload
}

func newWorkloads(d *Dataset) *workloads {
	mib := func(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }
	return &workloads{
		d: d,
		big: &Workload{ID: "big", Title: fmt.Sprintf("Big file: %s, sequential 1 MiB reads", mib(d.BigSize)), Unit: "MB/s", HigherIsBetter: true,
			Cases: []string{"cold", "warm", "hot"},
			Description: "One reader, `read(2)` of 1 MiB at a time from start to end (object stores: one GET streamed in 1 MiB reads). " +
				"**cold**: the system freshly started with empty caches and the kernel page cache dropped; **warm**: read again after dropping the kernel page cache, so the data comes from the system's own cache; **hot**: read again with nothing dropped."},
		small: &Workload{ID: "small", Title: fmt.Sprintf("Small files: %d × %d KiB in %d directories, 4 readers", d.SmallFiles, d.SmallSize>>10, d.SmallDirs), Unit: "files/s", HigherIsBetter: true,
			Cases:       []string{"cold", "warm"},
			Description: "Every file opened, read whole and closed, in a seeded random order, by 4 parallel readers (object stores: a GET per file). cold/warm as above."},
		ls: &Workload{ID: "meta-ls", Title: fmt.Sprintf("Listing: `ls -l` of a %d-entry directory", d.MetaEntries), Unit: "s", HigherIsBetter: false,
			Cases:       []string{"cold", "warm"},
			Description: "Wall time of coreutils `ls -l DIR` (every entry listed and stat'ed; the suite checks the entry count). cold: first listing after a fresh start; warm: again after dropping the kernel's dentry and inode caches."},
		stat: &Workload{ID: "meta-stat", Title: fmt.Sprintf("stat of %d files, 4 threads", d.SmallFiles), Unit: "stats/s", HigherIsBetter: true,
			Cases:       []string{"cold", "warm"},
			Description: "`stat(2)` of every file of the small set (in their 50 directories) by 4 parallel callers; cold: first time after a fresh start, warm: again after dropping the kernel's caches."},
		dl: &Workload{ID: "dataloader", Title: fmt.Sprintf("PyTorch DataLoader over the small set (%d samples)", d.SmallFiles), Unit: "samples/s", HigherIsBetter: true,
			Cases:       []string{"cold", "warm"},
			Description: "One epoch of `torch.utils.data.DataLoader` (Debian python3-torch), `num_workers=4`, `batch_size=32`, shuffled; each sample is a file read whole into a tensor. Interpreter start-up and the torch import are not counted; worker start-up is."},
		preload: &Workload{ID: "preload", Title: fmt.Sprintf("Preload of the small set (%s)", mib(d.SmallBytes())), Unit: "s", HigherIsBetter: false,
			Cases:       []string{"preload"},
			Description: "Time until the whole small set is in the system's cache, from a fresh start: `strata load /bench/small` for Strata; for rclone (which has no preload command) reading every file once through the mount with 8 readers; the local disk row reads every file once with 8 readers after dropping the page cache."},
		s3big: &Workload{ID: "s3-1mib", Title: fmt.Sprintf("S3 GET of 1 MiB objects (%d objects, cached)", d.S3Large), Unit: "MB/s", HigherIsBetter: true,
			Cases:       []string{"c=1", "c=8"},
			Description: "aws-sdk-go-v2 GETs, round-robin over the objects, at concurrency 1 and 8, after every object was read once (Strata: cached in the worker; MinIO: in the page cache)."},
		s3small: &Workload{ID: "s3-4kib", Title: fmt.Sprintf("S3 GET of 4 KiB objects (%d objects, cached)", d.S3Small), Unit: "GETs/s", HigherIsBetter: true,
			Cases:       []string{"c=1", "c=8"},
			Description: "As above with 4 KiB objects: a measure of per-request cost."},
	}
}

func (w *workloads) list() []*Workload {
	return []*Workload{w.big, w.small, w.dl, w.ls, w.stat, w.preload, w.s3big, w.s3small}
}

// bencher runs every workload that applies to one system, once.
type bencher struct {
	e      *env
	w      *workloads
	sys    System
	run    int
	wanted func(id string) bool
}

// figure is one measurement the phase makes.
type figure struct {
	w       *Workload
	c       string
	measure func(ctx context.Context) (float64, error)
	nodrop  bool // keep the kernel page cache (hot)
}

// phase starts the system fresh, makes the figures in order (dropping the
// kernel caches before each unless nodrop) and stops it. The first failure
// is recorded on that figure and every later one of the phase.
func (b *bencher) phase(ctx context.Context, name string, figs []figure) {
	var todo []figure
	for _, f := range figs {
		if b.wanted(f.w.ID) {
			todo = append(todo, f)
		}
	}
	if len(todo) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	logf("run %d: %s: %s", b.run+1, b.sys.Name(), name)
	fail := func(from int, err error) {
		logf("run %d: %s: %s: %v", b.run+1, b.sys.Name(), name, err)
		for _, f := range todo[from:] {
			st := f.w.SeriesFor(b.sys.Name(), b.sys.Role()).Stat(f.c)
			if st.Err == "" {
				st.Err = err.Error()
			}
		}
	}
	if err := catch(func() error { return b.sys.Start(ctx) }); err != nil {
		fail(0, fmt.Errorf("start: %w", err))
		b.sys.Stop()
		return
	}
	defer b.sys.Stop()
	for i, f := range todo {
		if !f.nodrop {
			if err := dropCaches(); err != nil {
				fail(i, err)
				return
			}
		}
		var v float64
		err := catch(func() (err error) { v, err = f.measure(ctx); return err })
		if err != nil {
			fail(i, err)
			return
		}
		f.w.SeriesFor(b.sys.Name(), b.sys.Role()).Stat(f.c).Add(v)
		logf("run %d: %s: %s %s: %.4g %s", b.run+1, b.sys.Name(), f.w.ID, f.c, v, f.w.Unit)
	}
}

func (b *bencher) all(ctx context.Context) {
	d, w := b.e.data, b.w
	small := shuffled(d.SmallNames(), d.Seed, 1)
	smallSize := int64(d.SmallSize)
	sys := b.sys
	if st, ok := sys.(*strata); ok && st.mode == strataS3 {
		sys = s3Only{st}
	}
	switch s := sys.(type) {
	case FileSystem:
		root := func() string { return s.Root() }
		readSmall := func(ctx context.Context) (float64, error) { return readFiles(root(), small, 4, smallSize) }
		b.phase(ctx, "metadata and small files", []figure{
			{w: w.ls, c: "cold", measure: func(ctx context.Context) (float64, error) {
				return lsLong(ctx, filepath.Join(root(), MetaDir), d.MetaEntries)
			}},
			{w: w.ls, c: "warm", measure: func(ctx context.Context) (float64, error) {
				return lsLong(ctx, filepath.Join(root(), MetaDir), d.MetaEntries)
			}},
			{w: w.stat, c: "cold", measure: func(context.Context) (float64, error) { return statFiles(root(), small) }},
			{w: w.stat, c: "warm", measure: func(context.Context) (float64, error) { return statFiles(root(), small) }},
			{w: w.small, c: "cold", measure: readSmall},
			{w: w.small, c: "warm", measure: readSmall},
		})
		scratch := filepath.Join(b.e.work, "dataloader")
		dl := func(ctx context.Context) (float64, error) {
			if err := freshDir(scratch); err != nil {
				return 0, err
			}
			return dataLoader(ctx, scratch, root(), small, d.SmallSize, d.Seed)
		}
		b.phase(ctx, "dataloader", []figure{{w: w.dl, c: "cold", measure: dl}, {w: w.dl, c: "warm", measure: dl}})
		readBig := func(context.Context) (float64, error) { return readSeq(filepath.Join(root(), BigName), d.BigSize) }
		b.phase(ctx, "big file", []figure{
			{w: w.big, c: "cold", measure: readBig},
			{w: w.big, c: "warm", measure: readBig},
			{w: w.big, c: "hot", measure: readBig, nodrop: true},
		})
		b.preload(ctx, s)
	case ObjectStore:
		bucket := func() string { return s.Bucket() }
		getSmall := func(ctx context.Context) (float64, error) {
			return getObjects(ctx, s.Client(), bucket(), small, len(small), 4, smallSize)
		}
		b.phase(ctx, "small objects", []figure{{w: w.small, c: "cold", measure: getSmall}, {w: w.small, c: "warm", measure: getSmall}})
		getBig := func(ctx context.Context) (float64, error) {
			return getObject(ctx, s.Client(), bucket(), BigName, d.BigSize)
		}
		b.phase(ctx, "big object", []figure{
			{w: w.big, c: "cold", measure: getBig},
			{w: w.big, c: "warm", measure: getBig},
			{w: w.big, c: "hot", measure: getBig, nodrop: true},
		})
		large, tiny := d.S3Keys(true), d.S3Keys(false)
		warmup := func(ctx context.Context) error {
			if _, err := getObjects(ctx, s.Client(), bucket(), large, len(large), 8, int64(d.S3LargeSize)); err != nil {
				return err
			}
			_, err := getObjects(ctx, s.Client(), bucket(), tiny, len(tiny), 8, int64(d.S3SmallSize))
			return err
		}
		gets := func(keys []string, size int64, ops, conc int, mbps bool) func(ctx context.Context) (float64, error) {
			return func(ctx context.Context) (float64, error) {
				v, err := getObjects(ctx, s.Client(), bucket(), keys, ops, conc, size)
				if mbps {
					v = v * float64(size) / 1e6
				}
				return v, err
			}
		}
		first := true
		withWarmup := func(m func(ctx context.Context) (float64, error)) func(ctx context.Context) (float64, error) {
			return func(ctx context.Context) (float64, error) {
				if first {
					first = false
					if err := warmup(ctx); err != nil {
						return 0, err
					}
				}
				return m(ctx)
			}
		}
		b.phase(ctx, "S3 GETs", []figure{
			{w: w.s3big, c: "c=1", measure: withWarmup(gets(large, int64(d.S3LargeSize), 200, 1, true)), nodrop: true},
			{w: w.s3big, c: "c=8", measure: gets(large, int64(d.S3LargeSize), 800, 8, true), nodrop: true},
			{w: w.s3small, c: "c=1", measure: gets(tiny, int64(d.S3SmallSize), 2000, 1, false), nodrop: true},
			{w: w.s3small, c: "c=8", measure: gets(tiny, int64(d.S3SmallSize), 8000, 8, false), nodrop: true},
		})
	}
}

// preload measures how long the system takes to get the small set into its
// cache: Strata's load command, reading it once elsewhere. Only Strata (one
// deployment), rclone and the local disk take part.
func (b *bencher) preload(ctx context.Context, s FileSystem) {
	switch v := s.(type) {
	case *strata:
		if v.mode != strataPassthrough {
			return
		}
	case *rclone, *localDisk:
	default:
		return
	}
	d := b.e.data
	b.phase(ctx, "preload", []figure{{w: b.w.preload, c: "preload", measure: func(ctx context.Context) (float64, error) {
		start := time.Now()
		if p, ok := s.(Preloader); ok {
			if err := p.Preload(ctx, "small"); err != nil {
				return 0, err
			}
		} else if _, err := readFiles(s.Root(), d.SmallNames(), 8, int64(d.SmallSize)); err != nil {
			return 0, err
		}
		return time.Since(start).Seconds(), nil
	}}})
}

// s3Only hides the file-system side of the Strata S3 deployment.
type s3Only struct{ s *strata }

func (o s3Only) Name() string                    { return o.s.Name() }
func (o s3Only) Role() Role                      { return o.s.Role() }
func (o s3Only) Start(ctx context.Context) error { return o.s.Start(ctx) }
func (o s3Only) Stop()                           { o.s.Stop() }
func (o s3Only) Client() *s3.Client              { return o.s.Client() }
func (o s3Only) Bucket() string                  { return o.s.Bucket() }

var _ ObjectStore = s3Only{}
