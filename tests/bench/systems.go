package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratafs/strata/tests/harness"
)

// System is one thing the suite measures. Start brings it up with every
// cache of its own empty; Stop takes it down (unmounting what it mounted).
type System interface {
	Name() string
	Role() Role
	Start(ctx context.Context) error
	Stop()
}

// FileSystem is a system that shows the dataset as files under Root.
type FileSystem interface {
	System
	Root() string
}

// ObjectStore is a system that serves the dataset over the S3 API.
type ObjectStore interface {
	System
	Client() *s3.Client
	Bucket() string
}

// Preloader is a system with its own way of warming a directory of the
// dataset (strata load); others preload by reading it.
type Preloader interface {
	Preload(ctx context.Context, dir string) error
}

// env is what systems share: the harness, MinIO, the dataset, binaries.
type env struct {
	tb     *harness.ProgramTB
	minio  *harness.MinIO
	bucket string
	data   *Dataset
	work   string // scratch space on the local disk
	strata string // the strata binary
	self   string // this program (for the loopback server)
	logf   func(string, ...any)
}

func s3Client(endpoint, key, secret string) *s3.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(key, secret, ""),
		HTTPClient:   &http.Client{Transport: tr},
	})
}

// freshDir empties (or creates) a directory.
func freshDir(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

// mounted reports whether dir is a mount point.
func mounted(dir string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.ReplaceAll(fields[4], `\040`, " ") == dir {
			return true
		}
	}
	return false
}

// unmount detaches a FUSE mount that is still there (lazily, so a busy or
// dead one cannot wedge the suite).
func unmount(dir string) {
	for i := 0; i < 50 && mounted(dir); i++ {
		_ = exec.Command("umount", dir).Run()
		if !mounted(dir) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	if mounted(dir) {
		_ = exec.Command("umount", "-l", dir).Run()
	}
}

// waitMounted waits until dir is a mount point whose root can be listed.
func waitMounted(p *harness.Process, dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited: %s", p.Name, p.Tail(2000))
		}
		if mounted(dir) {
			if _, err := os.ReadDir(dir); err == nil {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if p != nil {
		return fmt.Errorf("%s: %s not mounted after %s: %s", p.Name, dir, timeout, p.Tail(2000))
	}
	return fmt.Errorf("%s not mounted after %s", dir, timeout)
}

// localDisk is the dataset's copy read straight from the local disk.
type localDisk struct{ e *env }

func (s *localDisk) Name() string                { return "local disk" }
func (s *localDisk) Role() Role                  { return RoleCeiling }
func (s *localDisk) Start(context.Context) error { return nil }
func (s *localDisk) Stop()                       {}
func (s *localDisk) Root() string                { return s.e.data.Local }

// loopback is go-fuse's loopback file system over the local copy, served by
// another process: the ceiling of any FUSE file system on this kernel.
type loopback struct {
	e   *env
	mnt string
	p   *harness.Process
}

func (s *loopback) Name() string { return "go-fuse loopback" }
func (s *loopback) Role() Role   { return RoleCeiling }
func (s *loopback) Root() string { return s.mnt }
func (s *loopback) Start(context.Context) error {
	s.mnt = filepath.Join(s.e.work, "mnt-loopback")
	if err := os.MkdirAll(s.mnt, 0o755); err != nil {
		return err
	}
	s.p = harness.Start(s.e.tb, "loopback", nil, s.e.self, "loopback", s.e.data.Local, s.mnt)
	return waitMounted(s.p, s.mnt, 30*time.Second)
}
func (s *loopback) Stop() {
	if s.p != nil {
		s.p.Stop(10 * time.Second)
	}
	unmount(s.mnt)
}

// minioDirect is MinIO answering GETs itself.
type minioDirect struct {
	e *env
	c *s3.Client
}

func (s *minioDirect) Name() string { return "MinIO GET" }
func (s *minioDirect) Role() Role   { return RolePeer }
func (s *minioDirect) Start(context.Context) error {
	s.c = s3Client(s.e.minio.Endpoint, s.e.minio.AccessKey, s.e.minio.SecretKey)
	return nil
}
func (s *minioDirect) Stop()              {}
func (s *minioDirect) Client() *s3.Client { return s.c }
func (s *minioDirect) Bucket() string     { return s.e.bucket }

// rclone is `rclone mount --vfs-cache-mode full` of the bucket.
type rclone struct {
	e   *env
	bin string
	mnt string
	p   *harness.Process
}

func (s *rclone) Name() string { return "rclone mount (vfs full)" }
func (s *rclone) Role() Role   { return RolePeer }
func (s *rclone) Root() string { return s.mnt }
func (s *rclone) Start(context.Context) error {
	s.mnt = filepath.Join(s.e.work, "mnt-rclone")
	cache := filepath.Join(s.e.work, "rclone-cache")
	if err := freshDir(cache); err != nil {
		return err
	}
	if err := os.MkdirAll(s.mnt, 0o755); err != nil {
		return err
	}
	m := s.e.minio
	env := []string{
		"RCLONE_CONFIG=/dev/null",
		"RCLONE_S3_PROVIDER=Minio", "RCLONE_S3_ENDPOINT=" + m.Endpoint, "RCLONE_S3_REGION=us-east-1",
		"RCLONE_S3_ACCESS_KEY_ID=" + m.AccessKey, "RCLONE_S3_SECRET_ACCESS_KEY=" + m.SecretKey,
	}
	// The same kernel cache timeouts as Strata's defaults; server modtimes
	// spare rclone a HEAD per file in listings.
	s.p = harness.Start(s.e.tb, "rclone", env, s.bin, "mount", ":s3:"+s.e.bucket, s.mnt,
		"--vfs-cache-mode", "full", "--cache-dir", cache, "--vfs-cache-max-size", "50G",
		"--attr-timeout", "60s", "--dir-cache-time", "1h", "--use-server-modtime",
		"--no-checksum", "--log-level", "NOTICE")
	return waitMounted(s.p, s.mnt, 60*time.Second)
}
func (s *rclone) Stop() {
	unmount(s.mnt)
	if s.p != nil {
		s.p.Stop(20 * time.Second)
	}
	unmount(s.mnt)
}

// s3fs is s3fs-fuse (Debian) with its local file cache on.
type s3fs struct {
	e   *env
	bin string
	mnt string
	p   *harness.Process
}

func (s *s3fs) Name() string { return "s3fs (use_cache)" }
func (s *s3fs) Role() Role   { return RolePeer }
func (s *s3fs) Root() string { return s.mnt }
func (s *s3fs) Start(context.Context) error {
	s.mnt = filepath.Join(s.e.work, "mnt-s3fs")
	cache := filepath.Join(s.e.work, "s3fs-cache")
	if err := freshDir(cache); err != nil {
		return err
	}
	if err := os.MkdirAll(s.mnt, 0o755); err != nil {
		return err
	}
	m := s.e.minio
	passwd := filepath.Join(s.e.work, "s3fs.passwd")
	if err := os.WriteFile(passwd, []byte(m.AccessKey+":"+m.SecretKey+"\n"), 0o600); err != nil {
		return err
	}
	s.p = harness.Start(s.e.tb, "s3fs", nil, s.bin, s.e.bucket, s.mnt, "-f",
		"-o", "url="+m.Endpoint, "-o", "use_path_request_style", "-o", "endpoint=us-east-1",
		"-o", "passwd_file="+passwd, "-o", "use_cache="+cache)
	return waitMounted(s.p, s.mnt, 60*time.Second)
}
func (s *s3fs) Stop() {
	unmount(s.mnt)
	if s.p != nil {
		s.p.Stop(20 * time.Second)
	}
	unmount(s.mnt)
}

// strataMode is how one Strata system is deployed.
type strataMode int

const (
	strataPassthrough strataMode = iota // FUSE, disk tier, passthrough on
	strataDaemon                        // FUSE, memory + disk tiers, passthrough off
	strataS3                            // the S3 API, memory + disk tiers
)

// strata is `strata local` (embedded etcd, coordinator, worker) with the
// bucket mounted at /bench and one front-end.
type strata struct {
	e      *env
	mode   strataMode
	mnt    string
	etcd   string
	certs  string // the certificates strata local made (its CLI is admin)
	s3Addr string
	c      *s3.Client
	p      *harness.Process
}

func (s *strata) Name() string {
	switch s.mode {
	case strataPassthrough:
		return "Strata FUSE (passthrough)"
	case strataDaemon:
		return "Strata FUSE (no passthrough)"
	}
	return "Strata S3 API"
}
func (s *strata) Role() Role         { return RoleStrata }
func (s *strata) Root() string       { return filepath.Join(s.mnt, "bench") }
func (s *strata) Client() *s3.Client { return s.c }
func (s *strata) Bucket() string     { return "bench" }

const strataS3Key, strataS3Secret = "benchkey", "benchsecret0123456789"

func (s *strata) config(dir string, ports []int) string {
	tiers := `
      - name: mem
        medium: memory
        size: 2GiB
        policy: lru
      - name: ssd
        medium: disk
        policy: lrfu
        dirs: [{path: cache/ssd0, quota: 8GiB}]`
	if s.mode == strataPassthrough {
		// Passthrough hands the kernel a file fully cached on a disk
		// tier; the kernel's page cache is then the memory tier.
		tiers = `
      - name: ssd
        medium: disk
        policy: lrfu
        dirs: [{path: cache/ssd0, quota: 8GiB}]`
	}
	return fmt.Sprintf(`data_dir: %s
log: {level: warn}
etcd:
  endpoints: [%[2]s]
  embed_client_url: %[2]s
  embed_peer_url: http://%[3]s
coordinator: {listen: %[4]s, metrics_listen: ""}
worker:
  listen: %[5]s
  data_listen: %[6]s
  cache:
    tiers:%[7]s
fuse:
  passthrough: %[8]t
s3:
  enabled: %[9]t
  listen: %[10]s
  access_keys: ["%[11]s:%[12]s"]
hdfs: {enabled: false}
`, dir, s.etcd, harness.Addr(ports[1]), harness.Addr(ports[2]), harness.Addr(ports[3]), harness.Addr(ports[4]),
		tiers, s.mode == strataPassthrough, s.mode == strataS3, s.s3Addr, strataS3Key, strataS3Secret)
}

func (s *strata) Start(ctx context.Context) error {
	dir := filepath.Join(s.e.work, "strata")
	if err := freshDir(dir); err != nil {
		return err
	}
	ports := harness.FreePorts(s.e.tb, 6)
	s.etcd = "http://" + harness.Addr(ports[0])
	s.certs = filepath.Join(dir, "certs")
	s.s3Addr = harness.Addr(ports[5])
	cfg := filepath.Join(dir, "strata.yaml")
	if err := os.WriteFile(cfg, []byte(s.config(dir, ports)), 0o644); err != nil {
		return err
	}
	args := []string{"local", "--config", cfg}
	if s.mode != strataS3 {
		s.mnt = filepath.Join(s.e.work, "mnt-strata")
		if err := os.MkdirAll(s.mnt, 0o755); err != nil {
			return err
		}
		args = append(args, "--fuse", s.mnt)
	}
	s.p = harness.Start(s.e.tb, "strata-local", nil, s.e.strata, args...)
	deadline := time.Now().Add(90 * time.Second)
	for {
		if s.p.Exited() {
			return fmt.Errorf("strata local exited: %s", s.p.Tail(2000))
		}
		b, _ := os.ReadFile(s.p.Log)
		if strings.Contains(string(b), "Strata is running") {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("strata local not ready after 90s: %s", s.p.Tail(2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	m := s.e.minio
	optFile := filepath.Join(dir, "minio.options")
	opts := "s3.endpoint=" + m.Endpoint + "\ns3.region=us-east-1\ns3.access_key_id=" + m.AccessKey + "\ns3.secret_access_key=" + m.SecretKey + "\n"
	if err := os.WriteFile(optFile, []byte(opts), 0o600); err != nil {
		return err
	}
	if out, err := s.cli(ctx, "fs", "mount", "/bench", "s3://"+s.e.bucket, "--metadata-ttl", "1h", "--option-file", optFile); err != nil {
		return fmt.Errorf("strata fs mount: %w: %s", err, out)
	}
	if s.mode == strataS3 {
		s.c = s3Client("http://"+s.s3Addr, strataS3Key, strataS3Secret)
		return nil
	}
	return waitMounted(s.p, s.mnt, 30*time.Second)
}

// cli runs a strata client command against this deployment.
func (s *strata) cli(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, s.e.strata, append([]string{"--etcd-endpoints", s.etcd, "--certs-dir", s.certs}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Preload runs `strata load` on a directory of the dataset.
func (s *strata) Preload(ctx context.Context, dir string) error {
	out, err := s.cli(ctx, "load", "/bench/"+dir)
	if err != nil {
		return fmt.Errorf("strata load: %w: %s", err, tail(out, 400))
	}
	return nil
}

func (s *strata) Stop() {
	if s.p != nil {
		s.p.Stop(30 * time.Second)
	}
	if s.mnt != "" {
		unmount(s.mnt)
	}
}

// toolVersion returns the first line of `bin args...`.
func toolVersion(bin string, args ...string) string {
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil && len(out) == 0 {
		return "unknown"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

var errMissingTool = errors.New("not installed")
