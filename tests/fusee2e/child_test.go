package fusee2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/fuse"
	"github.com/stratafs/strata/tests/testcluster"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"
)

// Environment of a child mount process.
const (
	childEtcd    = "STRATA_FUSEE2E_ETCD"
	childPrefix  = "STRATA_FUSEE2E_PREFIX"
	childDir     = "STRATA_FUSEE2E_DIR"
	childStaging = "STRATA_FUSEE2E_STAGING"
)

// childEnvFor returns the environment that makes the test binary serve c's
// namespace at dir, like `strata fuse mount` does.
func childEnvFor(c *testClusterInfo, dir, staging string) []string {
	return []string{
		childEnv + "=1",
		childEtcd + "=" + c.etcd,
		childPrefix + "=" + c.prefix,
		childDir + "=" + dir,
		childStaging + "=" + staging,
	}
}

type testClusterInfo struct{ etcd, prefix string }

func clusterInfo(c *testcluster.Cluster) *testClusterInfo {
	return &testClusterInfo{etcd: c.Config.Etcd.Endpoints[0], prefix: c.Config.Etcd.Prefix}
}

// runChild serves a mount until SIGTERM or SIGINT, then unmounts: what
// `strata fuse mount` does, in a process the test can kill.
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := conf.Default()
	cfg.Etcd.Endpoints = []string{os.Getenv(childEtcd)}
	cfg.Etcd.Prefix = os.Getenv(childPrefix)
	cfg.Client.RequestTimeout = conf.Duration(10 * time.Second)
	etcd, err := clientv3.New(clientv3.Config{Endpoints: cfg.Etcd.Endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: etcd:", err)
		return 2
	}
	defer etcd.Close()
	c, err := client.New(ctx, client.Options{Etcd: etcd, Config: cfg, Registry: testcluster.Registry(), Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: client:", err)
		return 2
	}
	defer c.Close()
	fcfg := conf.DefaultFUSE()
	fcfg.StagingDir = os.Getenv(childStaging)
	srv, err := fuse.Mount(ctx, os.Getenv(childDir), fuse.Options{Client: c, Config: fcfg, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: mount:", err)
		return 2
	}
	fmt.Fprintln(os.Stderr, "child: mounted")
	select {
	case <-ctx.Done():
	case <-srv.Done():
	}
	cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Close(cctx); err != nil {
		fmt.Fprintln(os.Stderr, "child: unmount:", err)
		return 1
	}
	fmt.Fprintln(os.Stderr, "child: unmounted")
	return 0
}

// readerEnv makes the test binary a reader process (see runReader): the
// benchmarks read from another process, as applications do, so the
// reader's blocking FUSE syscalls do not compete with the server for this
// process's Go scheduler.
const readerEnv = "STRATA_FUSEE2E_READER"

// runReader reads files named on stdin (one per line, relative to the
// directory in STRATA_FUSEE2E_READER) with STRATA_FUSEE2E_READERS
// goroutines, in the mode of STRATA_FUSEE2E_MODE: "seq" reads each file to
// the end in 1 MiB reads, "rand4k" does STRATA_FUSEE2E_COUNT random 4 KiB
// reads of each, "stat" lstats each. It prints the elapsed nanoseconds.
func runReader() int {
	dir := os.Getenv(readerEnv)
	mode := os.Getenv("STRATA_FUSEE2E_MODE")
	readers, _ := strconv.Atoi(os.Getenv("STRATA_FUSEE2E_READERS"))
	count, _ := strconv.Atoi(os.Getenv("STRATA_FUSEE2E_COUNT"))
	seed, _ := strconv.ParseUint(os.Getenv("STRATA_FUSEE2E_SEED"), 10, 64)
	var names []string
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		names = append(names, sc.Text())
	}
	var next atomic.Int64
	var g errgroup.Group
	start := time.Now()
	for r := range max(readers, 1) {
		g.Go(func() error {
			buf := make([]byte, 1<<20)
			rng := rand.New(rand.NewPCG(seed, uint64(r)))
			for {
				i := next.Add(1) - 1
				if i >= int64(len(names)) {
					return nil
				}
				if mode == "stat" {
					var st syscall.Stat_t
					if err := syscall.Lstat(filepath.Join(dir, names[i]), &st); err != nil {
						return err
					}
					continue
				}
				f, err := os.Open(filepath.Join(dir, names[i]))
				if err != nil {
					return err
				}
				err = readMode(f, mode, buf, count, rng)
				f.Close()
				if err != nil {
					return err
				}
			}
		})
	}
	if err := g.Wait(); err != nil {
		fmt.Fprintln(os.Stderr, "reader:", err)
		return 1
	}
	fmt.Println(time.Since(start).Nanoseconds())
	return 0
}

func readMode(f *os.File, mode string, buf []byte, count int, rng *rand.Rand) error {
	switch mode {
	case "rand4k":
		st, err := f.Stat()
		if err != nil {
			return err
		}
		pages := st.Size() / 4096
		for range count {
			if _, err := f.ReadAt(buf[:4096], rng.Int64N(pages)*4096); err != nil {
				return err
			}
		}
		return nil
	default: // seq
		for {
			_, err := f.Read(buf)
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	}
}
