// Package webhdfs checks Strata's WebHDFS front-end with a client nobody
// here wrote: Debian's python3-fsspec WebHDFS file system, against an
// in-process cluster over a local directory and over a real MinIO (mutual
// TLS, delegation tokens, read-only identities, refused callers) and against the strata binary's `strata local` and
// `strata hdfs serve`. No Hadoop (Java) HDFS can be installed here; see
// docs/hdfs.md for what is checked instead.
package webhdfs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stratafs/strata/tests/harness"
)

// python is Debian's interpreter (another python may come first in PATH).
const python = "/usr/bin/python3"

var (
	binary string
	minio  *harness.MinIO
)

func TestMain(m *testing.M) {
	harness.Main(m, func(t harness.TB) {
		binary = harness.BuildStrata(t)
		minio = harness.StartMinIO(t)
	})
}

// needFsspec finds Debian's python3 with fsspec, failing (or skipping with
// STRATA_ALLOW_SKIP=1) with the command that installs it.
func needFsspec(t *testing.T) {
	t.Helper()
	if err := exec.Command(python, "-c", "import fsspec.implementations.webhdfs, requests").Run(); err != nil {
		msg := fmt.Sprintf("%s with fsspec is missing (%v): `apt-get install -y python3-fsspec python3-requests`", python, err)
		if os.Getenv("STRATA_ALLOW_SKIP") == "1" {
			t.Skip(msg)
		}
		t.Fatal(msg)
	}
}

// clientEnv is the environment of the Python client: requests would take
// REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE over the session's CA file, so they
// go; HOME is a temp dir.
func clientEnv(t *testing.T) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "HOME", "PYTHONPATH", "PYTHONHOME", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+t.TempDir(), "NO_PROXY=*")
}

// fsspecArgs are the arguments of testdata/fsspec_client.py.
type fsspecArgs struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	HTTPS    bool   `json:"https"`
	CA       string `json:"ca,omitempty"`
	Token    string `json:"token,omitempty"`
	Cert     string `json:"cert,omitempty"`
	Key      string `json:"key,omitempty"`
	Root     string `json:"root"`
	Mode     string `json:"mode"` // readwrite, readonly, denied
	SeedSize int    `json:"seed_size"`
}

// fsspecResult is what the script reports.
type fsspecResult struct {
	Missing      string         `json:"missing"`
	SeedSHA      string         `json:"seed_sha"`
	RangeSHAs    []string       `json:"range_shas"`
	CatRangeSHA  string         `json:"cat_range_sha"`
	Ukey         map[string]any `json:"ukey"`
	Summary      map[string]any `json:"summary"`
	WrittenSHA   string         `json:"written_sha"`
	AppendedSHA  string         `json:"appended_sha"`
	Nonempty     string         `json:"nonempty"`
	LsUp         []string       `json:"ls_up"`
	Chmod        string         `json:"chmod"`
	WriteRefused string         `json:"write_refused"`
	MkdirRefused string         `json:"mkdir_refused"`
	RmRefused    string         `json:"rm_refused"`
	LsRefused    string         `json:"ls_refused"`
	OpenRefused  string         `json:"open_refused"`
}

// runFsspec runs the fsspec script and decodes its report.
func runFsspec(t *testing.T, a fsspecArgs) fsspecResult {
	t.Helper()
	arg, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "testdata/fsspec_client.py", string(arg))
	cmd.Env = clientEnv(t)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("fsspec (%s as %s): %v\n%s", a.Mode, who(a), err, stderr.String())
	}
	var res fsspecResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("fsspec printed %q: %v\n%s", stdout.String(), err, stderr.String())
	}
	return res
}

func who(a fsspecArgs) string {
	switch {
	case a.Cert != "":
		return "certificate " + a.Cert
	case a.Token != "":
		return "token"
	}
	return "nobody"
}
