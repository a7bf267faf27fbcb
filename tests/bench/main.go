// Command bench is Strata's side-by-side benchmark suite: it measures Strata
// (FUSE with and without passthrough, the S3 API) and the alternatives a user
// would pick (rclone mount, s3fs, MinIO itself) on the same MinIO bucket on
// 127.0.0.1, next to two ceilings (the local disk and a go-fuse loopback
// mount), and writes docs/benchmarks.md with tables, PNG charts and the raw
// results as JSON.
//
//	go run ./tests/bench                 # what `make bench` runs
//	go run ./tests/bench -scale 0.02 -runs 1 -out /tmp/b.md -assets /tmp/b
//
// It needs root (FUSE mounts, dropping the kernel page cache), /dev/fuse,
// MinIO, rclone and s3fs (scripts/install-tools.sh bench installs them).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/stratafs/strata/tests/harness"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "loopback" {
		os.Exit(serveLoopback(os.Args[2:]))
	}
	os.Exit(run())
}

type options struct {
	runs    int
	scale   float64
	seed    int64
	out     string
	assets  string
	work    string
	systems string
	only    string
	keep    bool
}

func run() int {
	var o options
	flag.IntVar(&o.runs, "runs", 3, "repetitions of every figure (the median is reported)")
	flag.Float64Var(&o.scale, "scale", 1, "dataset size relative to the documented one (for a quick try: 0.02)")
	flag.Int64Var(&o.seed, "seed", 1, "dataset generator seed")
	flag.StringVar(&o.out, "out", "docs/benchmarks.md", "document to write the generated section into")
	flag.StringVar(&o.assets, "assets", "docs/bench", "directory for the charts and results.json")
	flag.StringVar(&o.work, "work", "/var/tmp/strata-bench", "scratch directory on the local disk (emptied first)")
	flag.StringVar(&o.systems, "systems", "", "comma-separated subset of systems (names as in the tables, case-insensitive substrings)")
	flag.StringVar(&o.only, "workloads", "", "comma-separated subset of workloads: big,small,meta,dataloader,preload,s3")
	flag.BoolVar(&o.keep, "keep", false, "keep the scratch directory (dataset copy, caches) at the end")
	flag.Parse()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	tb, err := harness.NewProgramTB()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer tb.Close()
	res, err := suite(ctx, tb, o)
	tb.Close() // stops every server and daemon (unmounting) before the scratch dir goes
	if !o.keep {
		removeScratch(o.work)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	fmt.Print(Summary(res))
	return 0
}

// removeScratch deletes the scratch directory unless something is still
// mounted below it (removing through a mount would delete the bucket's
// objects).
func removeScratch(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if strings.HasPrefix(e.Name(), "mnt-") {
			unmount(p)
			if mounted(p) {
				logf("%s is still mounted; leaving %s in place", p, dir)
				return
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		logf("remove %s: %v", dir, err)
	}
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

// catch turns a harness failure (a panic) into an error.
func catch(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	return fn()
}

func suite(ctx context.Context, tb *harness.ProgramTB, o options) (res *Results, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("run as root: the suite mounts FUSE file systems and drops the kernel page cache")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return nil, fmt.Errorf("no /dev/fuse: %w", err)
	}
	if err := dropCaches(); err != nil {
		return nil, err
	}
	began := time.Now()
	if err := freshDir(o.work); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	e := &env{tb: tb, bucket: "bench", work: o.work, self: self, logf: logf}
	err = catch(func() error {
		logf("building strata, starting MinIO")
		e.strata = harness.BuildStrata(tb)
		e.minio = harness.StartMinIO(tb)
		e.minio.CreateBucket(tb, e.bucket)
		return nil
	})
	if err != nil {
		return nil, err
	}
	e.data = NewDataset(o.seed, o.scale, filepath.Join(o.work, "local"))
	if err := e.data.Generate(ctx, s3Client(e.minio.Endpoint, e.minio.AccessKey, e.minio.SecretKey), e.bucket, logf); err != nil {
		return nil, err
	}

	res = &Results{
		Started: began, Runs: o.runs, Seed: o.seed,
		Command: "make bench  # go run ./tests/bench -runs " + fmt.Sprint(o.runs),
		Host:    hostInfo(),
	}
	if o.scale != 1 {
		res.Command += fmt.Sprintf(" -scale %g", o.scale)
	}
	systems := allSystems(e, res)
	if o.systems != "" {
		systems = slices.DeleteFunc(systems, func(s System) bool {
			for _, f := range strings.Split(o.systems, ",") {
				if strings.Contains(strings.ToLower(s.Name()), strings.ToLower(strings.TrimSpace(f))) {
					return false
				}
			}
			return true
		})
	}
	w := newWorkloads(e.data)
	res.Groups = w.list()
	wanted := func(id string) bool {
		if o.only == "" {
			return true
		}
		for _, f := range strings.Split(o.only, ",") {
			if strings.HasPrefix(id, strings.TrimSpace(f)) {
				return true
			}
		}
		return false
	}
	for r := range o.runs {
		for _, sys := range systems {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			b := &bencher{e: e, w: w, sys: sys, run: r, wanted: wanted}
			b.all(ctx)
		}
	}
	res.Duration = time.Since(began).Seconds()
	if err := os.MkdirAll(o.assets, 0o755); err != nil {
		return nil, err
	}
	if err := res.WriteJSON(filepath.Join(o.assets, "results.json")); err != nil {
		return nil, err
	}
	if err := WriteReport(res, o.out, o.assets); err != nil {
		return nil, err
	}
	logf("done in %s: %s, %s", time.Since(began).Round(time.Second), o.out, o.assets)
	return res, nil
}

// allSystems lists the systems in table order; a peer whose tool is missing
// is reported as an error row instead of failing the suite.
func allSystems(e *env, res *Results) []System {
	sys := []System{
		&strata{e: e, mode: strataPassthrough},
		&strata{e: e, mode: strataDaemon},
		&strata{e: e, mode: strataS3},
	}
	res.Versions = append(res.Versions, Version{"Strata", toolVersion(e.strata, "version")})
	if bin, err := exec.LookPath(filepath.Join(harness.ToolsDir(), "bin", "rclone")); err == nil {
		sys = append(sys, &rclone{e: e, bin: bin})
		res.Versions = append(res.Versions, Version{"rclone", toolVersion(bin, "version")})
	} else if bin, err := exec.LookPath("rclone"); err == nil {
		sys = append(sys, &rclone{e: e, bin: bin})
		res.Versions = append(res.Versions, Version{"rclone", toolVersion(bin, "version")})
	} else {
		logf("rclone is not installed (bash scripts/install-tools.sh bench); its rows are left out")
		res.Versions = append(res.Versions, Version{"rclone", "not installed: left out"})
	}
	if bin, err := exec.LookPath("s3fs"); err == nil {
		sys = append(sys, &s3fs{e: e, bin: bin})
		res.Versions = append(res.Versions, Version{"s3fs", toolVersion(bin, "--version")})
	} else {
		logf("s3fs is not installed (apt-get install s3fs); its rows are left out")
		res.Versions = append(res.Versions, Version{"s3fs", "not installed: left out"})
	}
	sys = append(sys, &minioDirect{e: e})
	res.Versions = append(res.Versions, Version{"MinIO", toolVersion(e.minio.Cmd.Path, "--version")})
	sys = append(sys, &loopback{e: e}, &localDisk{e: e})
	res.Versions = append(res.Versions, Version{"go-fuse loopback", "github.com/hanwen/go-fuse/v2 (this module's version)"})
	return sys
}

func hostInfo() Host {
	h := Host{CPUs: runtime.NumCPU(), Go: runtime.Version()}
	var u syscall.Utsname
	if syscall.Uname(&u) == nil {
		b := make([]byte, 0, len(u.Release))
		for _, c := range u.Release {
			if c == 0 {
				break
			}
			b = append(b, byte(c))
		}
		h.Kernel = string(b)
	}
	var si syscall.Sysinfo_t
	if syscall.Sysinfo(&si) == nil {
		h.MemoryGiB = int((uint64(si.Totalram)*uint64(si.Unit) + (1 << 29)) >> 30)
	}
	return h
}

// shuffled returns names in a seeded random order.
func shuffled(names []string, seed int64, salt uint64) []string {
	out := slices.Clone(names)
	rand.New(rand.NewPCG(uint64(seed), salt)).Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}
