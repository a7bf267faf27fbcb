package conf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSize(t *testing.T) {
	good := map[string]Size{
		"0": 0, "4096": 4096, "64MiB": 64 << 20, "64mib": 64 << 20, "1.5GiB": 3 << 29,
		"1GB": 1e9, "512KB": 512e3, "4k": 4096, "2T": 2 << 40, " 8 MiB ": 8 << 20, "10B": 10,
	}
	for in, want := range good {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "MiB", "1XB", "ten", "1e400"} {
		if _, err := ParseSize(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSize(%q) error = %v, want ErrInvalid", in, err)
		}
	}
	for _, s := range []Size{64 << 20, 1 << 30, 4096, 1000} {
		back, err := ParseSize(s.String())
		if err != nil || back != s {
			t.Errorf("round trip %d -> %q -> %d, %v", s, s.String(), back, err)
		}
	}
}

func TestDefaultIsValid(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default() does not validate: %v", err)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Log.Level = "loud"
	c.Etcd.Endpoints = []string{"127.0.0.1:2379"}
	c.Worker.PageSize = 3000
	c.Worker.Listen = "nope"
	c.Worker.Cache.Tiers = append(c.Worker.Cache.Tiers, Tier{Name: "mem", Medium: "tape", Policy: "random"})
	err := c.Validate()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate = %v", err)
	}
	for _, want := range []string{"log.level", "etcd.endpoints", "worker.page_size", "worker.listen", "used twice", "medium", "policy"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestPrecedenceFileThenEnv(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "strata.yaml")
	yaml := `
data_dir: /srv/strata
etcd:
  endpoints: [http://10.0.0.1:2379]
worker:
  block_size: 32MiB
  metadata_ttl: 1m
  cache:
    tiers:
      - {name: mem, medium: memory, size: 2GiB, policy: lru}
      - name: ssd
        medium: disk
        policy: lrfu
        dirs: [{path: /mnt/nvme0, quota: 100GiB}]
`
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"STRATA_ETCD_ENDPOINTS=http://a:2379, http://b:2379", "STRATA_WORKER_METADATA_TTL=5s", "HOME=/root", "STRATA_LOG_LEVEL=debug"}
	c, err := Load(p, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/srv/strata" || c.Worker.BlockSize != 32<<20 || len(c.Worker.Cache.Tiers) != 2 ||
		c.Worker.Cache.Tiers[1].Dirs[0].Quota != 100<<30 {
		t.Errorf("file values not applied: %+v", c)
	}
	if strings.Join(c.Etcd.Endpoints, ",") != "http://a:2379,http://b:2379" || c.Worker.MetadataTTL.D() != 5*time.Second || c.Log.Level != "debug" {
		t.Errorf("env did not override the file: %v %v %v", c.Etcd.Endpoints, c.Worker.MetadataTTL, c.Log.Level)
	}
}

func TestBadInputIsReported(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(p, []byte("worker:\n  blok_size: 1MiB\n"), 0o644)
	if _, err := Load(p, nil); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "blok_size") {
		t.Errorf("unknown key: %v", err)
	}
	_ = os.WriteFile(p, []byte("worker:\n  page_size: lots\n"), 0o644)
	if _, err := Load(p, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad size: %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), nil); err == nil {
		t.Error("missing file accepted")
	}
	_, err := Load("", []string{"STRATA_WORKER_PAGE_SIZE=huge", "STRATA_WORKER_UFS_CONCURRENCY=many"})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "STRATA_WORKER_PAGE_SIZE") || !strings.Contains(err.Error(), "STRATA_WORKER_UFS_CONCURRENCY") {
		t.Errorf("bad env values: %v", err)
	}
	_ = os.WriteFile(p, nil, 0o644)
	if _, err := Load(p, nil); err != nil {
		t.Errorf("empty file: %v", err)
	}
}
