package chartcheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// deployDir holds the Dockerfile and compose file, relative to this package.
const deployDir = "../.."

// TestCompose checks deploy/compose.yaml: the services a user expects, TLS
// everywhere with certificates made by a one-shot service, published ports,
// health checks, restart policies, a volume for etcd, pinned images and one
// build of deploy/Dockerfile.
func TestCompose(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]map[string]any `json:"services"`
		Volumes  map[string]any            `json:"volumes"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	want := []string{"certs", "etcd", "coordinator", "worker-1", "worker-2", "worker-3", "s3", "webhdfs", "fuse"}
	for _, name := range want {
		if doc.Services[name] == nil {
			t.Errorf("no %s service", name)
		}
	}
	script := fmt.Sprint(doc.Services["certs"]["command"])
	sans := regexp.MustCompile(`create-node ([^\n]+?) --certs-dir`).FindStringSubmatch(script)
	if sans == nil {
		t.Fatalf("the certs service makes no node certificate: %s", script)
	}
	names := strings.Fields(sans[1])
	for name, svc := range doc.Services {
		image, _ := svc["image"].(string)
		if image == "" || strings.HasSuffix(image, ":latest") || !strings.Contains(image, ":") {
			t.Errorf("%s: image %q is not pinned", name, image)
		}
		if name == "certs" {
			if svc["restart"] != "no" {
				t.Errorf("certs is a one-shot service; restart %v", svc["restart"])
			}
			continue
		}
		if svc["restart"] != "unless-stopped" {
			t.Errorf("%s: restart %v, want unless-stopped", name, svc["restart"])
		}
		hc, _ := svc["healthcheck"].(map[string]any)
		if hc == nil || hc["test"] == nil {
			t.Errorf("%s: no healthcheck", name)
		}
		deps, _ := svc["depends_on"].(map[string]any)
		if c, _ := deps["certs"].(map[string]any); c == nil || c["condition"] != "service_completed_successfully" {
			t.Errorf("%s: does not wait for the certificates: %v", name, deps)
		}
		cmd := fmt.Sprint(svc["command"])
		if strings.Contains(cmd, "--insecure") {
			t.Errorf("%s runs without TLS", name)
		}
		if name == "etcd" {
			for _, flag := range []string{"--client-cert-auth", "--trusted-ca-file=/certs/node/ca.crt", "https://0.0.0.0:2379"} {
				if !strings.Contains(cmd, flag) {
					t.Errorf("etcd lacks %s", flag)
				}
			}
			if !slices.Contains(anyStrings(svc["volumes"]), "etcd-data:/etcd-data") || !hasKey(doc.Volumes, "etcd-data") {
				t.Error("etcd keeps its data in no named volume")
			}
			continue
		}
		build, _ := svc["build"].(map[string]any)
		if build == nil || build["dockerfile"] != "deploy/Dockerfile" || build["context"] != ".." {
			t.Errorf("%s: build %v, want deploy/Dockerfile from the repository root", name, build)
		}
		if !regexp.MustCompile(`--certs-dir=/certs/(node|client|admin)`).MatchString(cmd) {
			t.Errorf("%s: no --certs-dir in %s", name, cmd)
		}
		env, _ := svc["environment"].(map[string]any)
		if env["STRATA_ETCD_ENDPOINTS"] != "https://etcd:2379" {
			t.Errorf("%s: etcd endpoints %v", name, env["STRATA_ETCD_ENDPOINTS"])
		}
		for _, k := range []string{"STRATA_WORKER_ADVERTISE_HOST", "STRATA_COORDINATOR_ADVERTISE_ADDR"} {
			if v, ok := env[k].(string); ok {
				host := strings.Split(v, ":")[0]
				if !slices.Contains(names, host) {
					t.Errorf("%s advertises %s, which the node certificate (%v) does not name", name, host, names)
				}
			}
		}
	}
	for svc, port := range map[string]string{"s3": ":7480:7480", "coordinator": ":7420:7420", "webhdfs": ":9870:9870", "etcd": ":2379:2379"} {
		if !slices.ContainsFunc(anyStrings(doc.Services[svc]["ports"]), func(p string) bool { return strings.HasSuffix(p, port) }) {
			t.Errorf("%s does not publish %s", svc, port)
		}
	}
	fuse := doc.Services["fuse"]
	if fuse["user"] != "0:0" || !slices.Contains(anyStrings(fuse["devices"]), "/dev/fuse") || !slices.Contains(anyStrings(fuse["cap_add"]), "SYS_ADMIN") {
		t.Errorf("the fuse service lacks root, /dev/fuse or CAP_SYS_ADMIN: %v", fuse)
	}
	for _, host := range []string{"etcd", "coordinator", "localhost"} {
		if !slices.Contains(names, host) {
			t.Errorf("the node certificate does not name %s", host)
		}
	}
}

func anyStrings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func hasKey(m map[string]any, k string) bool {
	_, ok := m[k]
	return ok
}

// TestDockerfile checks the image: build stamps, an unprivileged user, the
// local configuration, and a .dockerignore that keeps state and history out.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{"-X main.version=${VERSION}", "-X main.commit=${COMMIT}", "-X main.date=${DATE}",
		"USER 65532:65532", "COPY deploy/local.yaml /etc/strata/local.yaml", `CMD ["--config", "/etc/strata/local.yaml", "local"]`} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	for _, line := range strings.Split(df, "\n") {
		if strings.HasPrefix(line, "FROM ") && (strings.Contains(line, ":latest") || !strings.Contains(strings.Fields(line)[1], ":")) {
			t.Errorf("unpinned base image: %s", line)
		}
	}
	ign, err := os.ReadFile(filepath.Join(deployDir, "..", ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", ".strata/", "bin/"} {
		if !slices.Contains(strings.Fields(string(ign)), want) {
			t.Errorf(".dockerignore lacks %s", want)
		}
	}
	var local map[string]map[string]any
	lb, err := os.ReadFile(filepath.Join(deployDir, "local.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(lb, &local); err != nil {
		t.Fatal(err)
	}
	for section, key := range map[string]string{"coordinator": "listen", "worker": "listen", "s3": "listen"} {
		if v := fmt.Sprint(local[section][key]); !strings.HasPrefix(v, "0.0.0.0:") {
			t.Errorf("local.yaml %s.%s = %s: `docker run -p` cannot reach it", section, key, v)
		}
	}
}
