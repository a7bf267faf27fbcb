package s3compat

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	awsCLI  = "/usr/bin/aws"
	python3 = "/usr/bin/python3"
	s3cmd   = "/usr/bin/s3cmd"
)

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writeRandomFile writes n pseudo-random bytes (from a seed, cheaply).
func writeRandomFile(t *testing.T, path string, n int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	block := randBytes(t, 1<<20)
	for i := int64(0); i < n; i += int64(len(block)) {
		block[0], block[1] = byte(i>>20), byte(i>>28) // no two MiB alike
		if _, err := f.Write(block[:min(int64(len(block)), n-i)]); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAWSCLI drives Debian's AWS CLI v2: ls, cp of a 200 MiB file up
// (multipart) and down (ranged GETs), sync, head-object and a presigned URL.
func TestAWSCLI(t *testing.T) {
	aws := tool(t, awsCLI, "awscli")
	st := startStrata(t, nil)
	env := clientEnv(t)
	cli := func(args ...string) string {
		return run(t, env, aws, append([]string{"--endpoint-url", st.endpoint, "--no-cli-pager"}, args...)...)
	}
	dir := t.TempDir()

	if out := cli("s3", "ls"); !strings.Contains(out, " data\n") || !strings.Contains(out, " listing\n") {
		t.Errorf("s3 ls:\n%s", out)
	}
	if out := cli("s3", "ls", "s3://listing/k/a/"); strings.Count(out, "PRE ") != 25 {
		t.Errorf("s3 ls s3://listing/k/a/:\n%s", out)
	}

	big := filepath.Join(dir, "big.bin")
	writeRandomFile(t, big, 200<<20)
	cli("s3", "cp", big, "s3://data/cli/big.bin")
	back := filepath.Join(dir, "big.back")
	cli("s3", "cp", "s3://data/cli/big.bin", back)
	if a, b := fileSHA256(t, big), fileSHA256(t, back); a != b {
		t.Fatalf("200 MiB round trip differs: %s vs %s", a, b)
	}
	// One whole object in MinIO, not parts.
	if got, err := minioGet(t, st.dataBucket, "cli/big.bin"); err != nil || int64(len(got)) != 200<<20 {
		t.Fatalf("MinIO holds %d bytes: %v", len(got), err)
	}
	if err := os.Remove(back); err != nil {
		t.Fatal(err)
	}

	var head struct {
		ContentLength int64
		ETag          string
		LastModified  string
	}
	if err := json.Unmarshal([]byte(cli("s3api", "head-object", "--bucket", "data", "--key", "cli/big.bin")), &head); err != nil {
		t.Fatal(err)
	}
	if head.ContentLength != 200<<20 || head.ETag == "" || head.LastModified == "" {
		t.Errorf("head-object: %+v", head)
	}

	src := filepath.Join(dir, "tree")
	for i, name := range []string{"a.txt", "sub/b.txt", "sub/deeper/c d.txt", "ü.txt"} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Repeat([]byte{byte('a' + i)}, 1000*(i+1)), 0o644); err != nil {
			t.Fatal(err)
		}
		// S3 keeps LastModified in whole seconds, and sync re-uploads a file
		// whose local mtime is later: one written in the second of its
		// upload would be sent again, by S3 as by Strata.
		old := time.Now().Add(-time.Minute)
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	out := cli("s3", "sync", src, "s3://data/synced")
	if strings.Count(out, "upload:") != 4 {
		t.Errorf("first sync:\n%s", out)
	}
	if out := cli("s3", "sync", src, "s3://data/synced"); strings.Contains(out, "upload:") {
		t.Errorf("second sync uploaded again:\n%s", out)
	}
	dst := filepath.Join(dir, "tree-back")
	cli("s3", "sync", "s3://data/synced", dst)
	for _, name := range []string{"a.txt", "sub/b.txt", "sub/deeper/c d.txt", "ü.txt"} {
		if fileSHA256(t, filepath.Join(src, name)) != fileSHA256(t, filepath.Join(dst, name)) {
			t.Errorf("sync down: %s differs", name)
		}
	}
	if out := cli("s3", "ls", "--recursive", "s3://data/synced/"); strings.Count(out, "\n") != 4 {
		t.Errorf("s3 ls --recursive:\n%s", out)
	}

	url := strings.TrimSpace(cli("s3", "presign", "s3://data/synced/sub/b.txt", "--expires-in", "300"))
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, bytes.Repeat([]byte("b"), 2000)) {
		t.Errorf("presigned GET: %d %q", resp.StatusCode, truncate(body))
	}
	cli("s3", "rm", "--recursive", "s3://data/synced")
	if left := strings.TrimSpace(cli("s3api", "list-objects-v2", "--bucket", "data", "--prefix", "synced/", "--query", "length(Contents || `[]`)")); left != "0" {
		t.Errorf("after rm --recursive: %s keys left", left)
	}
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

const boto3Script = `
import hashlib, sys
import boto3
from botocore.config import Config
from boto3.s3.transfer import TransferConfig

endpoint, bucket, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

keys = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="listing", Prefix="k/", PaginationConfig={"PageSize": 1000}):
    keys += [o["Key"] for o in page.get("Contents", [])]
assert len(keys) == n, (len(keys), n)
assert keys == sorted(keys) and len(set(keys)) == n
v1 = []
for page in s3.get_paginator("list_objects").paginate(Bucket="listing", Prefix="k/b/", PaginationConfig={"PageSize": 700}):
    v1 += [o["Key"] for o in page.get("Contents", [])]
assert v1 == [k for k in keys if k.startswith("k/b/")], len(v1)
cps = []
for page in s3.get_paginator("list_objects_v2").paginate(Bucket="listing", Prefix="k/", Delimiter="/"):
    cps += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
assert cps == ["k/a/", "k/b/"], cps

key = keys[1234]
body = s3.get_object(Bucket="listing", Key=key, Range="bytes=2-5")["Body"].read()
assert body == key.encode()[2:6], body
r = s3.get_object(Bucket="listing", Key=key, Range="bytes=-3")
assert r["Body"].read() == key.encode()[-3:] and r["ContentRange"].startswith("bytes "), r["ContentRange"]

data = bytes(range(256)) * (47 * 1024)  # ~11.75 MiB
mp = s3.create_multipart_upload(Bucket=bucket, Key="py/mp.bin")
parts, part = [], 5 * 1024 * 1024
for i, off in enumerate(range(0, len(data), part), start=1):
    r = s3.upload_part(Bucket=bucket, Key="py/mp.bin", UploadId=mp["UploadId"], PartNumber=i, Body=data[off:off + part])
    parts.append({"PartNumber": i, "ETag": r["ETag"]})
done = s3.complete_multipart_upload(Bucket=bucket, Key="py/mp.bin", UploadId=mp["UploadId"], MultipartUpload={"Parts": parts})
# The ETag answered is the stored object's, the one HEAD shows.
assert done["ETag"] == s3.head_object(Bucket=bucket, Key="py/mp.bin")["ETag"], done["ETag"]
assert s3.get_object(Bucket=bucket, Key="py/mp.bin")["Body"].read() == data

cfg = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024, max_concurrency=4)
s3.upload_fileobj(__import__("io").BytesIO(data), bucket, "py/transfer.bin", Config=cfg)
out = __import__("io").BytesIO()
s3.download_fileobj(bucket, "py/transfer.bin", out, Config=cfg)
assert out.getvalue() == data
try:
    s3.head_object(Bucket=bucket, Key="py/none")
    raise SystemExit("head of a missing key succeeded")
except s3.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] in ("404", "NoSuchKey"), e.response
print("OK", len(keys))
`

// TestBoto3 drives Debian's boto3: pagination over 5,000 keys (V2, V1,
// delimiter), ranged GETs, multipart uploads by hand and by s3transfer.
func TestBoto3(t *testing.T) {
	py := tool(t, python3, "python3-boto3")
	st := startStrata(t, nil)
	out := run(t, clientEnv(t), py, "-c", boto3Script, st.endpoint, "data", fmt.Sprint(listKeys))
	if !strings.Contains(out, fmt.Sprintf("OK %d", listKeys)) {
		t.Errorf("boto3: %s", out)
	}
	if got, err := minioGet(t, st.dataBucket, "py/mp.bin"); err != nil || len(got) != 256*47*1024 {
		t.Errorf("boto3's multipart object in MinIO: %d bytes, %v", len(got), err)
	}
}

// TestS3cmd drives Debian's s3cmd: put (one piece and multipart), get, ls.
func TestS3cmd(t *testing.T) {
	bin := tool(t, s3cmd, "s3cmd")
	st := startStrata(t, nil)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "s3cfg")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`[default]
access_key = %s
secret_key = %s
host_base = %s
host_bucket = %s
use_https = False
signature_v2 = False
bucket_location = us-east-1
check_ssl_certificate = False
`, keyID, keySecret, st.addr, st.addr)), 0o600); err != nil {
		t.Fatal(err)
	}
	env := clientEnv(t)
	cmd := func(args ...string) string { return run(t, env, bin, append([]string{"-c", cfg}, args...)...) }
	small := filepath.Join(dir, "small.txt")
	if err := os.WriteFile(small, []byte("hello from s3cmd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.bin")
	writeRandomFile(t, big, 12<<20)
	cmd("put", small, "s3://data/s3cmd/small.txt")
	cmd("put", "--multipart-chunk-size-mb=5", big, "s3://data/s3cmd/big.bin")
	out := cmd("ls", "s3://data/s3cmd/")
	if !strings.Contains(out, "s3://data/s3cmd/small.txt") || !strings.Contains(out, "s3://data/s3cmd/big.bin") {
		t.Errorf("s3cmd ls:\n%s", out)
	}
	if out := cmd("ls", "s3://listing/k/"); strings.Count(out, "DIR") != 2 {
		t.Errorf("s3cmd ls of directories:\n%s", out)
	}
	for _, name := range []string{"small.txt", "big.bin"} {
		back := filepath.Join(dir, name+".back")
		cmd("get", "s3://data/s3cmd/"+name, back)
		if fileSHA256(t, filepath.Join(dir, name)) != fileSHA256(t, back) {
			t.Errorf("s3cmd get %s differs", name)
		}
	}
	data, _ := os.ReadFile(small)
	sum := md5.Sum(data)
	if got, err := minioGet(t, st.dataBucket, "s3cmd/small.txt"); err != nil || md5.Sum(got) != sum {
		t.Errorf("MinIO copy of s3cmd's object: %v", err)
	}
	cmd("del", "s3://data/s3cmd/small.txt")
	if out := cmd("ls", "s3://data/s3cmd/"); strings.Contains(out, "small.txt") {
		t.Errorf("after del:\n%s", out)
	}
}
