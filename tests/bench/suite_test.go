package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratafs/strata/tests/harness"
)

// TestMain lets the test binary serve the loopback mount the suite starts
// by running itself, as the bench binary does.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "loopback" {
		os.Exit(serveLoopback(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// TestSuiteSmoke runs the whole suite on a 1 % dataset, once, with the
// systems this machine has (rclone and s3fs only when installed), so that
// `make bench` keeps working: every workload must produce a figure for
// every system it applies to, and the report must be written.
func TestSuiteSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	if os.Geteuid() != 0 {
		if os.Getenv("STRATA_ALLOW_SKIP") == "1" {
			t.Skip("needs root (FUSE mounts, drop_caches)")
		}
		t.Fatal("needs root (FUSE mounts, drop_caches); STRATA_ALLOW_SKIP=1 skips")
	}
	if err := dropCaches(); err != nil {
		// The suite needs it for every cold and warm figure; nothing else
		// in the tests does, so a machine without it skips only this test.
		t.Skipf("the benchmark suite cannot run here: %v", err)
	}
	tb, err := harness.NewProgramTB()
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	o := options{runs: 1, scale: 0.01, seed: 7, out: filepath.Join(out, "benchmarks.md"), assets: filepath.Join(out, "bench"),
		work: filepath.Join(out, "work"), systems: "strata fuse (passthrough),strata s3,minio,loopback,local disk"}
	res, err := suite(context.Background(), tb, o)
	tb.Close()
	removeScratch(o.work)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range res.Groups {
		if len(w.Series) == 0 {
			t.Errorf("%s: no system measured", w.ID)
		}
		for _, s := range w.Series {
			for _, c := range w.Cases {
				st := s.Values[c]
				if !st.OK() || st.Err != "" || st.Median <= 0 {
					t.Errorf("%s / %s / %s: %+v", w.ID, s.System, c, st)
				}
			}
		}
	}
	doc, err := os.ReadFile(o.out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Strata FUSE (passthrough)", "Strata S3 API", "go-fuse loopback", "bench/big.png"} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("the report lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(o.assets, "results.json")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(o.work); !os.IsNotExist(err) {
		t.Errorf("scratch dir left behind: %v", err)
	}
}
