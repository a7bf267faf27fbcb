package loade2e

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stratafs/strata/cluster"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/tests/harness"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// mixedSizes is a dataset of n files: mostly small, some medium, a few
// larger than a block, spread over nested directories.
func mixedSizes(n int) map[string]int {
	sizes := map[string]int{}
	for i := range n {
		var size int
		switch {
		case i%200 == 7:
			size = blockSize + 1 + i*977%blockSize // 2 blocks
		case i%20 == 3:
			size = 100<<10 + i*7919%(400<<10)
		default:
			size = 1 + i*131%(32<<10)
		}
		sizes[mixedKey(i)] = size
	}
	sizes["README"] = 7
	sizes["empty"] = 0
	return sizes
}

func mixedKey(i int) string { return fmt.Sprintf("train/shard-%02d/part-%d/%05d.bin", i%16, i%3, i) }

// TestLoadThenServeWithTheOriginDown loads a few thousand files, stops the
// origin, and lists and reads every file from the cache (client library and
// CLI), after the metadata TTL expired.
func TestLoadThenServeWithTheOriginDown(t *testing.T) {
	origin := harness.StartMinIO(t) // stopped below: not the package's
	c := startCluster(t, clusterOpts{workers: 3, coords: 1, minio: origin})
	bucket := origin.NewBucket(t, "outage")
	ds := upload(t, origin, bucket, mixedSizes(2500))
	c.Mount("/ds", bucket)

	start := time.Now()
	out := c.MustCLI("load", "/ds", "--json")
	j := parseJob(t, out)
	t.Logf("loaded %d files, %d bytes in %s (job: %s running, UFS %d bytes)", j.Progress.FilesDone, j.Progress.BytesDone,
		time.Since(start).Round(time.Millisecond), time.Duration(j.FinishedUnixMs-j.StartedUnixMs)*time.Millisecond, j.Progress.UfsBytes)
	if j.State != "done" || j.Progress.FilesDone != int64(len(ds)) || j.Progress.BytesDone != ds.bytes() ||
		j.Progress.FilesFailed != 0 || j.Progress.FilesListed != int64(len(ds)) || j.Progress.UfsBytes != ds.bytes() {
		t.Fatalf("load: %s", out)
	}

	origin.Stop(10 * time.Second)
	time.Sleep(2500 * time.Millisecond) // past the 2 s metadata TTL

	// Client library: a recursive listing finds every file, and every byte
	// reads back right.
	var found []string
	var walk func(dir string)
	walk = func(dir string) {
		for fi, err := range c.Client.List(context.Background(), dir, false) {
			if err != nil {
				for name, p := range c.Coords {
					t.Logf("%s:\n%s", name, grepLines(p.Tail(1<<24), "WARN", "ERROR"))
				}
				for name, p := range c.Workers {
					t.Logf("%s:\n%s", name, grepLines(p.Tail(1<<24), "WARN", "ERROR"))
				}
				t.Fatalf("list %s with the origin down: %v", dir, err)
			}
			if fi.IsDir {
				walk(fi.Path)
			} else {
				found = append(found, strings.TrimPrefix(fi.Path, "/ds/"))
			}
		}
	}
	walk("/ds")
	want := make([]string, 0, len(ds))
	for k := range ds {
		want = append(want, k)
	}
	slices.Sort(want)
	slices.Sort(found)
	if !slices.Equal(found, want) {
		t.Fatalf("listing with the origin down found %d files, want %d", len(found), len(want))
	}
	if err := c.ReadAll(ds, "/ds"); err != nil {
		t.Fatalf("read with the origin down: %v", err)
	}

	// The CLI, from another process.
	out = c.MustCLI("fs", "ls", "-R", "/ds")
	for _, k := range []string{"README", "empty", "00007.bin", "02499.bin"} {
		if !strings.Contains(out, k) {
			t.Errorf("fs ls -R with the origin down lacks %s", k)
		}
	}
	if n := strings.Count(out, ".bin\n"); n != len(ds)-2 {
		t.Errorf("fs ls -R listed %d .bin files, want %d", n, len(ds)-2)
	}
	for _, k := range []string{"README", mixedKey(7), mixedKey(203), mixedKey(2483), mixedKey(1000)} {
		if got := c.MustCLI("fs", "cat", "/ds/"+k); got != string(ds[k]) {
			t.Errorf("fs cat %s with the origin down: %d bytes, want %d", k, len(got), len(ds[k]))
		}
	}
	var stale float64
	for id := range c.Workers {
		stale += c.workerMetric(id, "strata_worker_metadata_stale_served_total")
	}
	if stale == 0 {
		t.Error("no worker served an expired metadata entry: the reads did not exercise stale-if-error")
	}
	if after := c.ufsBytes("w0", "w1", "w2"); after != ds.bytes() {
		t.Errorf("the workers read %d bytes from the UFS in all, want exactly the dataset's %d", after, ds.bytes())
	}
}

// leaderProcess returns the name of the coordinator process that leads.
func (c *testCluster) leaderProcess() string {
	c.T.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := c.EtcdCli.Get(context.Background(), "/strata/leader/", firstByCreation()...)
		if err == nil && len(resp.Kvs) > 0 {
			id := string(resp.Kvs[0].Value)
			for name, p := range c.Coords {
				if !p.Exited() && strings.Contains(p.Tail(1<<20), id) {
					return name
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	c.T.Fatal("no leader coordinator")
	return ""
}

// TestLeaderKilledMidLoad kills the leading coordinator with SIGKILL in the
// middle of a load followed in the foreground: the standby resumes the job
// from its checkpoint, the final counts are exact and no block is read from
// the UFS twice.
func TestLeaderKilledMidLoad(t *testing.T) {
	c := startCluster(t, clusterOpts{workers: 3, coords: 2})
	bucket := minio.NewBucket(t, "failover")
	sizes := map[string]int{}
	for i := range 200 {
		sizes[fmt.Sprintf("d%d/f%03d", i%4, i)] = 256<<10 + i*1031
	}
	ds := upload(t, minio, bucket, sizes)
	c.Mount("/f", bucket)
	victim := c.leaderProcess()

	// The foreground command follows the job across the leader change. The
	// cap makes the load last long enough (~8 s) to kill mid-way.
	cmd := exec.Command(binary, "--etcd-endpoints", c.Endpoints(), "--config", c.Config, "load", "/f", "--bandwidth", "12MiB/s", "--json")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var id string
	deadline := time.Now().Add(20 * time.Second)
	for id == "" {
		resp, _ := c.EtcdCli.Get(context.Background(), "/strata/jobs/", firstByCreation()...)
		if resp != nil && len(resp.Kvs) > 0 {
			id = strings.TrimPrefix(string(resp.Kvs[0].Key), "/strata/jobs/")
		}
		if time.Now().After(deadline) {
			t.Fatal("no job in etcd")
		}
		time.Sleep(100 * time.Millisecond)
	}
	before := c.waitJob(id, 30*time.Second, "a quarter done", func(j *rpcpb.LoadJob) bool {
		return j.GetProgress().GetFilesDone() >= int64(len(ds))/4
	})
	c.Coords[victim].Signal(syscall.SIGKILL)
	t.Logf("killed the leader %s at %d/%d files", victim, before.GetProgress().GetFilesDone(), len(ds))

	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("strata load: %v\n%s%s", err, out.String(), errOut.String())
		}
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("the load did not finish after the leader was killed:\n%s", errOut.String())
	}
	j := parseJob(t, out.String())
	if j.State != "done" || j.Resumes < 1 {
		t.Fatalf("job after the leader change: state %s, resumes %d\n%s", j.State, j.Resumes, out.String())
	}
	if j.Progress.FilesDone != int64(len(ds)) || j.Progress.BytesDone != ds.bytes() || j.Progress.FilesListed != int64(len(ds)) ||
		j.Progress.FilesFailed != 0 {
		t.Fatalf("counts after the leader change: %+v, want %d files, %d bytes", j.Progress, len(ds), ds.bytes())
	}
	read := c.ufsBytes("w0", "w1", "w2")
	t.Logf("workers read %d bytes from the UFS for a %d-byte dataset (%.4f×)", read, ds.bytes(), float64(read)/float64(ds.bytes()))
	if read < ds.bytes() || float64(read) > float64(ds.bytes())*1.05 {
		t.Errorf("workers read %d bytes from the UFS, want the dataset's %d (+5%% at most for blocks in flight at the kill)", read, ds.bytes())
	}
	if err := c.ReadAll(ds, "/f"); err != nil {
		t.Fatal(err)
	}
	if again := c.ufsBytes("w0", "w1", "w2"); again != read {
		t.Errorf("reading the loaded dataset read %d more bytes from the UFS", again-read)
	}
}

// TestReplicasServeAfterAWorkerDies loads with 2 replicas, kills one worker
// with SIGKILL and reads everything: the surviving owners serve it from
// their caches, with no byte from the UFS.
func TestReplicasServeAfterAWorkerDies(t *testing.T) {
	c := startCluster(t, clusterOpts{workers: 3, coords: 1})
	bucket := minio.NewBucket(t, "replicas")
	sizes := map[string]int{}
	for i := range 24 {
		sizes[fmt.Sprintf("r/f%02d", i)] = 300<<10 + i*(300<<10) // up to 7.2 MiB: multi-block files
	}
	ds := upload(t, minio, bucket, sizes)
	c.Mount("/r", bucket)
	j := parseJob(t, c.MustCLI("load", "/r", "--replicas", "2", "--json"))
	if j.State != "done" || j.Progress.FilesDone != int64(len(ds)) || j.Progress.UfsBytes != 2*ds.bytes() {
		t.Fatalf("load with 2 replicas: %+v (want %d UFS bytes: each replica reads its copy)", j.Progress, 2*ds.bytes())
	}
	// Every block is on its first two owners.
	m, _ := c.Client.Mounts().ByPath("/r")
	ring := c.Client.View().Members().Ring
	for k := range ds {
		fi, err := c.Client.Stat(context.Background(), "/r/"+k, false)
		if err != nil {
			t.Fatal(err)
		}
		for b := int64(0); b*blockSize < fi.Size; b++ {
			for _, owner := range ring.Owners(cluster.BlockKey(m.ID, k, b), 2) {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				pr, err := c.WorkerClient(owner).Present(ctx, &rpcpb.PresentRequest{MountId: m.ID, Path: k,
					Info: rpcpb.FromFileInfo(fi.UFS(k)), Blocks: []int64{b}})
				cancel()
				if err != nil || len(pr.GetPresent()) != 1 {
					t.Fatalf("block %d of %s is not on its owner %s: %v", b, k, owner, err)
				}
			}
		}
	}
	before := map[string]int64{}
	for _, id := range []string{"w0", "w2"} {
		before[id] = c.WorkerStats(id).GetUfsBytes()
	}
	c.Workers["w1"].Signal(syscall.SIGKILL)
	// Reads right away (w1 still in the ring: the client falls back to the
	// second owner) and after its lease expired (the ring moved w1's blocks
	// to their second owners).
	if err := c.ReadAll(ds, "/r"); err != nil {
		t.Fatalf("read right after the kill: %v", err)
	}
	c.WaitRing(2)
	if err := c.ReadAll(ds, "/r"); err != nil {
		t.Fatalf("read after w1 left the ring: %v", err)
	}
	for id, n := range before {
		if after := c.WorkerStats(id).GetUfsBytes(); after != n {
			t.Errorf("%s read %d bytes from the UFS after w1 died; the replicas should have served everything", id, after-n)
		}
	}
}

// TestVerifyLoadsWhatIsMissing loads more than a worker's memory tier holds,
// so the first files are evicted by the last: --verify finds their blocks
// missing and loads them again.
func TestVerifyLoadsWhatIsMissing(t *testing.T) {
	c := startCluster(t, clusterOpts{workers: 1, coords: 1, workerMemory: "12MiB"})
	bucket := minio.NewBucket(t, "verify")
	sizes := map[string]int{}
	for i := range 16 {
		sizes[fmt.Sprintf("v/f%02d", i)] = 1 << 20
	}
	ds := upload(t, minio, bucket, sizes)
	c.Mount("/v", bucket)
	out, errOut, code := c.Run("load", "/v", "--verify", "--bandwidth", "40MiB/s", "--json")
	j := parseJob(t, out)
	if code != 0 || j.State != "done" || j.Phase != "verify" || j.Progress.FilesDone != int64(len(ds)) ||
		j.Progress.VerifyFiles != int64(len(ds)) || j.Progress.VerifyMissingBlocks == 0 || j.Progress.VerifyFailed != 0 {
		t.Fatalf("load --verify (exit %d): %+v\n%s%s", code, j.Progress, out, errOut)
	}
	t.Logf("verify found %d blocks missing and loaded them", j.Progress.VerifyMissingBlocks)
}

// firstByCreation reads the oldest key under a prefix.
func firstByCreation() []clientv3.OpOption {
	return []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortAscend), clientv3.WithLimit(1)}
}

// TestLoadCommands runs the load, free and pin commands on one cluster:
// bad input, --detach/status/list/stop/--json, --metadata-only,
// --include/--exclude, free and pins, a file deleted mid-load, and the
// --bandwidth cap.
func TestLoadCommands(t *testing.T) {
	c := startCluster(t, clusterOpts{workers: 2, coords: 1})
	bucket := minio.NewBucket(t, "commands")
	sizes := map[string]int{}
	for i := range 30 {
		sizes[fmt.Sprintf("img/%02d.jpg", i)] = 200<<10 + i
		sizes[fmt.Sprintf("img/%02d.txt", i)] = 100 + i
	}
	sizes["tmp/junk.jpg"] = 5 << 20
	ds := upload(t, minio, bucket, sizes)
	c.Mount("/c", bucket)

	t.Run("bad input", func(t *testing.T) {
		c.T = t
		c.Fails("no mount", "load", "/elsewhere/data")
		c.Fails("not found", "load", "/c/no-such-dir")
		c.Fails("not a valid glob", "load", "/c", "--include", "[a-")
		c.Fails("--bandwidth", "load", "/c", "--bandwidth", "fast")
		c.Fails("--replicas", "load", "/c", "--replicas", "0")
		c.Fails("no load job", "load", "stop", "ld-0000000000")
		c.Fails("no load job", "load", "status", "ld-0000000000")
		c.Fails("no mount", "free", "/elsewhere")
		c.Fails("no mount", "fs", "pin", "/elsewhere")
		c.Fails("not pinned", "fs", "unpin", "/c/img")
	})

	t.Run("metadata only, include and exclude", func(t *testing.T) {
		c.T = t
		before := c.ufsBytes("w0", "w1")
		j := parseJob(t, c.MustCLI("load", "/c", "--metadata-only", "--json"))
		if j.State != "done" || j.Progress.FilesDone != int64(len(ds)) || j.Progress.BytesDone != 0 || j.Progress.UfsBytes != 0 {
			t.Errorf("--metadata-only: %+v", j.Progress)
		}
		if after := c.ufsBytes("w0", "w1"); after != before {
			t.Errorf("--metadata-only read %d bytes of data", after-before)
		}
		j = parseJob(t, c.MustCLI("load", "/c", "--include", "*.jpg", "--exclude", "tmp", "--json"))
		if j.Progress.FilesDone != 30 || j.Progress.FilesSkipped != 30 || j.Progress.FilesListed != 60 || j.Progress.BytesDone != 30*(200<<10)+435 {
			t.Errorf("--include '*.jpg' --exclude tmp: %+v", j.Progress)
		}
	})

	t.Run("free and pins", func(t *testing.T) {
		c.T = t
		c.MustCLI("load", "/c/img", "-q")
		out := c.MustCLI("fs", "pin", "/c/img")
		if !strings.Contains(out, "pinned /c/img until unpinned") {
			t.Errorf("pin said %q", out)
		}
		if out := c.MustCLI("fs", "pins"); !strings.Contains(out, "/c/img") {
			t.Errorf("pins:\n%s", out)
		}
		c.waitWorkersLog(`msg=pinned `, 1)
		if out := c.MustCLI("free", "/c"); !strings.Contains(out, "kept 60 pinned files") || !strings.Contains(out, "freed 0 files") {
			t.Errorf("free of a pinned path said:\n%s", out)
		}
		c.MustCLI("fs", "unpin", "/c/img")
		c.waitWorkersLog(`msg=unpinned `, 1)
		if out := c.MustCLI("free", "/c"); !strings.Contains(out, "freed 60 files") {
			t.Errorf("free after unpin said:\n%s", out)
		}
		for _, id := range []string{"w0", "w1"} {
			if st := c.WorkerStats(id); st.GetTiers()[0].GetUsedBytes() != 0 {
				t.Errorf("%s still holds %d bytes after free", id, st.GetTiers()[0].GetUsedBytes())
			}
		}
		// A pin with a TTL lapses by itself (etcd lease and tier expiry).
		c.MustCLI("load", "/c/img", "-q")
		if out := c.MustCLI("fs", "pin", "/c/img", "--ttl", "4s"); !strings.Contains(out, "until 20") {
			t.Errorf("pin --ttl said %q", out)
		}
		c.waitWorkersLog(`msg=pinned `, 2)
		if out := c.MustCLI("free", "/c/img/00.jpg"); !strings.Contains(out, "kept 1 pinned") {
			t.Errorf("free under a TTL pin said:\n%s", out)
		}
		waitFor(t, "the TTL pin lapsed", func() bool { return strings.Contains(c.MustCLI("free", "/c/img"), "freed 60 files") })
		if out := c.MustCLI("fs", "pins"); strings.Contains(out, "/c/img") {
			t.Errorf("a lapsed pin is still listed:\n%s", out)
		}
	})

	t.Run("detach, status, list, stop", func(t *testing.T) {
		c.T = t
		id := strings.TrimSpace(c.MustCLI("load", "/c", "--bandwidth", "1MiB/s", "--detach"))
		if !strings.HasPrefix(id, "ld-") {
			t.Fatalf("--detach printed %q", id)
		}
		c.waitJob(id, 20*time.Second, "running", func(j *rpcpb.LoadJob) bool { return j.GetState() == "running" })
		if out := c.MustCLI("load", "status", id); !strings.Contains(out, "running") || !strings.Contains(out, "progress:") {
			t.Errorf("load status of a running job:\n%s", out)
		}
		if out := c.MustCLI("load", "list"); !strings.Contains(out, id) || !strings.Contains(out, "running") {
			t.Errorf("load list:\n%s", out)
		}
		if out := c.MustCLI("load", "stop", id); !strings.Contains(out, "stopping") {
			t.Errorf("load stop said %q", out)
		}
		j := c.waitJob(id, 20*time.Second, "stopped", finished)
		if j.GetState() != "stopped" || j.GetProgress().GetFilesDone() >= int64(len(ds)) {
			t.Errorf("stopped job: %v", j)
		}
		st := parseJob(t, c.MustCLI("load", "status", id, "--json"))
		if st.State != "stopped" {
			t.Errorf("status --json of the stopped job: %+v", st)
		}
		if out := c.MustCLI("load", "stop", id); !strings.Contains(out, "already ended") {
			t.Errorf("stop of a stopped job said %q", out)
		}
		if _, _, code := c.Run("load", "/c/img/00.txt", "-q"); code != 0 {
			t.Error("load of a single file failed")
		}

		// Ctrl-C in the foreground detaches: the job keeps running.
		cmd := exec.Command(binary, "--etcd-endpoints", c.Endpoints(), "--config", c.Config, "load", "/c", "--bandwidth", "1MiB/s")
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var fg *rpcpb.LoadJob
		waitFor(t, "a foreground job running", func() bool {
			resp, err := c.EtcdCli.Get(context.Background(), "/strata/jobs/", clientv3.WithPrefix())
			if err != nil {
				return false
			}
			for _, kv := range resp.Kvs {
				if j := c.job(strings.TrimPrefix(string(kv.Key), "/strata/jobs/")); j.GetState() == "running" {
					fg = j
					return true
				}
			}
			return false
		})
		_ = cmd.Process.Signal(syscall.SIGINT)
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
			t.Errorf("Ctrl-C: %v, want exit status 130", err)
		}
		if msg := errOut.String(); !strings.Contains(msg, "detached: job "+fg.GetId()+" keeps running") || !strings.Contains(msg, "strata load stop "+fg.GetId()) {
			t.Errorf("Ctrl-C said:\n%s", msg)
		}
		time.Sleep(1500 * time.Millisecond) // two checkpoints
		if j := c.job(fg.GetId()); j.GetState() != "running" {
			t.Errorf("after Ctrl-C the job is %s, want still running", j.GetState())
		}
		c.MustCLI("load", "stop", fg.GetId())
		c.waitJob(fg.GetId(), 20*time.Second, "stopped", finished)
	})

	t.Run("files deleted mid-load", func(t *testing.T) {
		c.T = t
		c.MustCLI("free", "/c")
		// 1 MiB/s over 6 MiB: the files are listed at once, and their
		// tasks wait their turn long enough to delete three of them.
		id := strings.TrimSpace(c.MustCLI("load", "/c/img", "--bandwidth", "1MiB/s", "--detach"))
		c.waitJob(id, 20*time.Second, "listed", func(j *rpcpb.LoadJob) bool { return j.GetProgress().GetFilesListed() == 60 })
		gone := []string{"img/27.jpg", "img/28.jpg", "img/29.jpg"}
		for _, k := range gone {
			if _, err := minio.S3Client(t).DeleteObject(context.Background(), &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)}); err != nil {
				t.Fatal(err)
			}
		}
		j := c.waitJob(id, 60*time.Second, "finished", finished)
		p := j.GetProgress()
		if j.GetState() != "done" || p.GetFilesFailed() != 3 || p.GetFilesDone() != 57 || len(j.GetFailures()) != 3 {
			t.Fatalf("job with 3 files deleted mid-load: %v", j)
		}
		for i, f := range j.GetFailures() {
			if f.GetPath() != "/c/"+gone[i] || !strings.Contains(f.GetReason(), "deleted from the UFS during the load") {
				t.Errorf("failure %d: %s: %s", i, f.GetPath(), f.GetReason())
			}
		}
		out, _, code := c.Run("load", "status", id)
		if code != 0 || !strings.Contains(out, "failures (3)") || !strings.Contains(out, "/c/img/28.jpg: deleted from the UFS") {
			t.Errorf("load status of the job with failures:\n%s", out)
		}
		// A foreground load of a set with failures exits non-zero and says why.
		out, errOut, code := c.Run("load", "/c/img/29.jpg")
		if code == 0 || !strings.Contains(out+errOut, "not found") {
			t.Errorf("load of a deleted file: exit %d\n%s%s", code, out, errOut)
		}
	})

	t.Run("permission denied", func(t *testing.T) {
		c.T = t
		// Credentials that may list the bucket and read everything but two
		// objects: the load lists the images (30, or 27 after the subtest
		// above deleted three) and fails those two.
		denied := []string{"img/03.jpg", "img/17.jpg"}
		policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
			{"Effect":"Allow","Action":["s3:*"],"Resource":["arn:aws:s3:::%[1]s","arn:aws:s3:::%[1]s/*"]},
			{"Effect":"Deny","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%[1]s/%[2]s","arn:aws:s3:::%[1]s/%[3]s"]}]}`,
			bucket, denied[0], denied[1])
		key, secret, token := minio.SessionCredentials(t, policy)
		c.MustCLI("fs", "mount", "/p", "s3://"+bucket, "--option", "s3.endpoint="+minio.Endpoint,
			"--option", "s3.access_key_id="+key, "--option", "s3.secret_access_key="+secret, "--option", "s3.session_token="+token)
		out, errOut, code := c.Run("load", "/p/img", "--include", "*.jpg", "--json")
		if code == 0 {
			t.Fatalf("load with two unreadable files exited 0:\n%s%s", out, errOut)
		}
		j := parseJob(t, out)
		p := j.Progress
		if j.State != "done" || p.FilesFailed != 2 || p.FilesDone != p.FilesListed-p.FilesSkipped-2 || p.FilesDone < 25 || len(j.Failures) != 2 {
			t.Fatalf("job with two unreadable files: %s\n%s", out, errOut)
		}
		slices.SortFunc(j.Failures, func(a, b struct {
			Path   string `json:"path"`
			Reason string `json:"reason"`
		}) int {
			return strings.Compare(a.Path, b.Path)
		})
		for i, f := range j.Failures {
			if f.Path != "/p/"+denied[i] || !strings.Contains(f.Reason, "permission denied") {
				t.Errorf("failure %d: %s: %s, want %s: permission denied", i, f.Path, f.Reason, denied[i])
			}
		}
		// The readable files were loaded: they are cached on their owners.
		for i := range 30 {
			name := fmt.Sprintf("img/%02d.jpg", i)
			if slices.Contains(denied, name) {
				continue
			}
			got, errOut, code := c.Run("fs", "cat", "/p/"+name)
			if code != 0 && strings.Contains(errOut, "not found") {
				continue // deleted by the subtest above
			}
			if got != string(ds[name]) {
				t.Errorf("%s: %d bytes after the load, want its %d bytes", name, len(got), len(ds[name]))
			}
		}
		c.MustCLI("fs", "unmount", "/p")
	})

	t.Run("bandwidth cap", func(t *testing.T) {
		c.T = t
		bucket2 := minio.NewBucket(t, "bandwidth")
		const capBps = 6 << 20
		sizes := map[string]int{}
		for i := range 60 {
			sizes[fmt.Sprintf("b/%02d", i)] = 2 << 20 // 120 MiB: 20 s at the cap
		}
		ds := upload(t, minio, bucket2, sizes)
		c.Mount("/bw", bucket2)
		j := parseJob(t, c.MustCLI("load", "/bw", "--bandwidth", "6MiB/s", "--json"))
		secs := float64(j.FinishedUnixMs-j.StartedUnixMs) / 1000
		rate := float64(j.Progress.UfsBytes) / secs
		t.Logf("--bandwidth 6MiB/s: %d bytes from the UFS in %.1f s = %.2f MiB/s (%.1f%% of the cap)", j.Progress.UfsBytes, secs,
			rate/(1<<20), 100*rate/capBps)
		if j.State != "done" || j.Progress.UfsBytes != ds.bytes() {
			t.Fatalf("bandwidth-capped load: %+v", j.Progress)
		}
		if math.Abs(rate-capBps)/capBps > 0.10 {
			t.Errorf("achieved %.2f MiB/s under a 6 MiB/s cap: more than 10%% off", rate/(1<<20))
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15 s", what)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// grepLines returns the lines of log that contain one of words (for failure
// messages).
func grepLines(log string, words ...string) string {
	var out []string
	for line := range strings.SplitSeq(log, "\n") {
		for _, w := range words {
			if strings.Contains(line, w) {
				out = append(out, line)
				break
			}
		}
	}
	if len(out) > 40 {
		out = out[len(out)-40:]
	}
	return strings.Join(out, "\n")
}
