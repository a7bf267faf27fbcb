package s3

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/stratafs/strata/ufs"
)

// crashChildEnv makes the test binary a writer that streams an endless
// object through Put until it is killed (see TestCrashedUploadsAborted).
const crashChildEnv = "STRATA_S3_CRASH_CHILD"

// endless yields random bytes forever.
type endless struct{}

func (endless) Read(p []byte) (int, error) { return rand.Read(p) }

// crashChild runs in the child process: a Put of unknown size into the
// mount given in the environment, which never ends.
func crashChild() {
	loc, err := ufs.ParseURI(os.Getenv(crashChildEnv))
	if err == nil {
		var f *FS
		opts := ufs.Options{"s3.part_size": "5MiB", "s3.abort_stale_uploads": "0"}
		for _, k := range []string{"s3.endpoint", "s3.region", "s3.access_key_id", "s3.secret_access_key"} {
			opts[k] = os.Getenv(strings.ToUpper(strings.ReplaceAll(k, ".", "_")))
		}
		if f, err = New(context.Background(), loc, opts); err == nil {
			_, err = f.Put(context.Background(), "victim", endless{}, -1)
		}
	}
	fmt.Fprintln(os.Stderr, "crash child:", err)
	os.Exit(3)
}

// pendingUploads lists the multipart uploads of a bucket by key.
func pendingUploads(t *testing.T, bucket string) []string {
	t.Helper()
	out, err := minio.S3Client(t).ListMultipartUploads(context.Background(), &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, u := range out.Uploads {
		keys = append(keys, aws.ToString(u.Key))
	}
	slices.Sort(keys)
	return keys
}

// TestCrashedUploadsAborted: a writer killed with SIGKILL in the middle of
// streamed writes leaves multipart uploads in the bucket; the next process
// that writes to the mount aborts them (those older than
// s3.abort_stale_uploads), and nothing outside the mount's prefix.
func TestCrashedUploadsAborted(t *testing.T) {
	bucket := minio.NewBucket(t, "crash")
	uri := "s3://" + bucket + "/mnt"
	// Uploads of others, outside the mount: never touched.
	mc := minio.S3Client(t)
	for _, k := range []string{"other/x", "mnt2/y"} {
		if _, err := mc.CreateMultipartUpload(t.Context(), &awss3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
	for crash := range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+uri)
		for k, v := range minio.S3Options() {
			cmd.Env = append(cmd.Env, strings.ToUpper(strings.ReplaceAll(k, ".", "_"))+"="+v)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it once its upload has begun.
		deadline := time.Now().Add(30 * time.Second)
		for !slices.Contains(pendingUploads(t, bucket), "mnt/victim") || len(pendingUploads(t, bucket)) < 3+crash {
			if time.Now().After(deadline) {
				_ = cmd.Process.Kill()
				t.Fatalf("the child started no upload: %s", stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(200 * time.Millisecond) // a part or two
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}
	if got := pendingUploads(t, bucket); !slices.Equal(got, []string{"mnt/victim", "mnt/victim", "mnt2/y", "other/x"}) {
		t.Fatalf("after two crashes the bucket holds the uploads %v", got)
	}

	// Younger than the cutoff: kept.
	f := open(t, uri, nil)
	if n, err := f.AbortStaleUploads(t.Context(), time.Now().Add(-time.Hour)); n != 0 || err != nil {
		t.Errorf("AbortStaleUploads(an hour ago) = %d, %v; want nothing aborted", n, err)
	}
	// The restarted writer: its first Put starts the sweeper.
	f.staleAfter = time.Nanosecond // every upload is stale (the option's floor is 1h)
	if _, err := f.Put(t.Context(), "after-restart", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := pendingUploads(t, bucket)
		if slices.Equal(got, []string{"mnt2/y", "other/x"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sweeper left the uploads %v; want only those outside the mount", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestStaleUploadsOption(t *testing.T) {
	for v, want := range map[string]time.Duration{"0": 0, "off": 0, "2h": 2 * time.Hour, "": -1, "30m": -1, "soon": -1} {
		opts := ufs.Options{"s3.credentials": "anonymous"}
		if v != "" {
			opts["s3.abort_stale_uploads"] = v
		}
		s, err := parseOptions("s3://b", opts)
		switch {
		case v == "" && (err != nil || s.staleUploads != defStaleUploads):
			t.Errorf("default: %v, %v", s.staleUploads, err)
		case v != "" && want < 0 && err == nil:
			t.Errorf("s3.abort_stale_uploads=%q accepted", v)
		case want >= 0 && (err != nil || s.staleUploads != want):
			t.Errorf("s3.abort_stale_uploads=%q: %v, %v", v, s.staleUploads, err)
		}
	}
}
