package fusee2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/tests/testcluster"
)

// diskTierCluster starts a one-worker cluster whose cache is one disk tier,
// with a local directory mounted at /local, and a client whose local worker
// is that worker (as in `strata local`).
func diskTierCluster(t testing.TB, files map[string][]byte) (*testcluster.Cluster, *client.Client, string) {
	t.Helper()
	src := t.TempDir()
	for k, v := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(src, k)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(src, k), v, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cache := t.TempDir()
	c := testcluster.Start(t, testcluster.Options{Tune: func(cfg *conf.Config) {
		cfg.Worker.Cache.Tiers = []conf.Tier{{Name: "ssd", Medium: "disk", Policy: "lru", Dirs: []conf.TierDir{{Path: cache, Quota: 1 << 30}}}}
	}})
	c.MustMount(t, "/local", "file://"+src, nil)
	lc, err := client.New(context.Background(), client.Options{Etcd: c.Etcd, Config: c.Config, Registry: c.Registry, Logger: c.Log, Local: c.Workers[0], Secrets: c.Secrets})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lc.Close() })
	return c, lc, src
}

// waitFullyCached waits until the local worker holds every byte of path on
// its disk tier (the worker fills pages in the background).
func waitFullyCached(t testing.TB, c *client.Client, path string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		f, err := c.Open(context.Background(), path, false)
		if err != nil {
			t.Fatal(err)
		}
		_, release, ok := f.OpenLocal()
		_ = f.Close()
		if ok {
			release()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not fully cached on the disk tier after 30s", path)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPassthrough(t *testing.T) {
	files := map[string][]byte{"big.bin": randBytes(t, 9<<20+321), "cold.bin": randBytes(t, 2<<20)}
	_, lc, _ := diskTierCluster(t, files)

	t.Run("on", func(t *testing.T) {
		srv := mount(t, lc, testConfig(t), "/local")
		p := filepath.Join(srv.Dir(), "big.bin")
		// First read: not cached yet, through the daemon (which caches it).
		if b, err := os.ReadFile(p); err != nil || !bytes.Equal(b, files["big.bin"]) {
			t.Fatalf("cold read: %d bytes, %v", len(b), err)
		}
		if st := srv.Stats(); st.PassthroughOpens != 0 || st.DaemonOpens != 1 {
			t.Fatalf("after a cold read: %+v", st)
		}
		waitFullyCached(t, lc, "/local/big.bin")

		// The kernel sends the RELEASE of the cold read's handle
		// asynchronously; until the daemon has seen it, an open goes
		// through the daemon too (the kernel cannot mix the two on one
		// inode). Open until one goes through passthrough.
		var f1 *os.File
		for deadline := time.Now().Add(30 * time.Second); ; {
			before := srv.Stats().PassthroughOpens
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			if srv.Stats().PassthroughOpens > before {
				f1 = f
				break
			}
			f.Close()
			if time.Now().After(deadline) {
				t.Fatalf("no open of the fully cached file went through passthrough in 30s: %+v", srv.Stats())
			}
			time.Sleep(50 * time.Millisecond)
		}
		defer f1.Close()
		f2, err := os.Open(p) // shares the backing file
		if err != nil {
			t.Fatal(err)
		}
		defer f2.Close()
		if st := srv.Stats(); st.PassthroughOpens != 2 {
			t.Fatalf("fully cached file: %+v, want 2 passthrough opens", st)
		}
		got := make([]byte, len(files["big.bin"]))
		if _, err := f1.ReadAt(got, 0); err != nil || !bytes.Equal(got, files["big.bin"]) {
			t.Fatalf("passthrough read: %v", err)
		}
		if _, err := f2.ReadAt(got[:4096], 5<<20); err != nil || !bytes.Equal(got[:4096], files["big.bin"][5<<20:5<<20+4096]) {
			t.Fatalf("passthrough read at an offset: %v", err)
		}
		if st := srv.Stats(); st.PassthroughFallbackReads != 0 || st.DaemonReadBytes != int64(len(files["big.bin"])) {
			t.Errorf("after passthrough reads: %+v: the daemon served reads (only the cold read should count)", st)
		}
		// The kernel cannot mix passthrough and daemon opens of an inode.
		_, err = os.OpenFile(p, os.O_WRONLY, 0)
		if !errors.Is(err, syscall.ETXTBSY) {
			t.Errorf("open for write during passthrough reads: %v, want ETXTBSY", err)
		}
		// A file not fully cached goes through the daemon.
		if b, err := os.ReadFile(filepath.Join(srv.Dir(), "cold.bin")); err != nil || !bytes.Equal(b, files["cold.bin"]) {
			t.Fatalf("cold.bin: %v", err)
		}
		if st := srv.Stats(); st.DaemonOpens != 2 {
			t.Errorf("cold.bin: %+v, want a second daemon open", st)
		}
	})

	t.Run("off", func(t *testing.T) {
		cfg := testConfig(t)
		cfg.Passthrough = false
		srv := mount(t, lc, cfg, "/local")
		waitFullyCached(t, lc, "/local/big.bin")
		if b, err := os.ReadFile(filepath.Join(srv.Dir(), "big.bin")); err != nil || !bytes.Equal(b, files["big.bin"]) {
			t.Fatalf("read: %v", err)
		}
		if st := srv.Stats(); st.PassthroughOpens != 0 || st.DaemonOpens != 1 {
			t.Errorf("passthrough off: %+v, want one daemon open", st)
		}
	})
}
