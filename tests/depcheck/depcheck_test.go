// Package depcheck enforces the import rules of docs/architecture.md (from
// DESIGN.md): which Strata packages each package may depend on.
package depcheck

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/stratafs/strata"

// allowed maps a package (or a tree, with /...) to the Strata packages it may
// import, directly or not. Standard and third-party imports are not checked
// here, except that front-ends must not reach tier or UFS backends.
var allowed = map[string][]string{
	"conf":          {},
	"pki":           {},
	"ufs":           {"conf"},
	"ufs/...":       {"conf", "ufs"},
	"namespace":     {"conf", "ufs"},
	"tier":          {"conf"},
	"rpcpb":         {"conf", "ufs", "namespace", "pki"},
	"cluster":       {"conf", "ufs", "namespace", "pki"},
	"cluster/...":   {"conf", "ufs", "namespace", "cluster", "pki"},
	"worker":        {"conf", "ufs", "tier", "namespace", "cluster", "rpcpb", "pki"},
	"coordinator":   {"conf", "ufs", "namespace", "cluster", "rpcpb", "pki"},
	"client":        {"conf", "ufs", "namespace", "cluster", "rpcpb", "pki"},
	"fuse/...":      {"conf", "ufs", "namespace", "cluster", "rpcpb", "client", "pki"},
	"fuse":          {"conf", "ufs", "namespace", "cluster", "rpcpb", "client", "pki"},
	"s3api":         {"conf", "ufs", "namespace", "cluster", "rpcpb", "client", "pki"},
	"hdfsapi":       {"conf", "ufs", "namespace", "cluster", "rpcpb", "client", "pki"},
	"csi":           {"conf", "ufs", "namespace", "cluster", "rpcpb", "client", "fuse", "pki"},
	"cmd/...":       {"*"},
	"tests/...":     {"*"},
	"deploy/...":    {},
	"tier/...":      {"conf", "tier"},
	"namespace/...": {"conf", "ufs", "namespace"},
}

// frontEnds may not import these, even indirectly through client.
var frontEndForbidden = []string{"tier", "ufs/s3", "ufs/local", "ufs/gcs", "ufs/azblob", "ufs/hdfs", "worker", "coordinator"}

type pkg struct {
	ImportPath string
	Deps       []string
}

func rule(rel string) ([]string, bool) {
	if a, ok := allowed[rel]; ok {
		return a, true
	}
	for pat, a := range allowed {
		if tree, ok := strings.CutSuffix(pat, "/..."); ok && strings.HasPrefix(rel, tree+"/") {
			return a, true
		}
	}
	return nil, false
}

func permitted(dep string, allow []string) bool {
	for _, a := range allow {
		if a == "*" || dep == a || (strings.HasPrefix(dep, a+"/") && a != "ufs" && a != "cluster") {
			return true
		}
	}
	return false
}

func TestImportRules(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps=false", "-json", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	checked := 0
	for {
		var p struct{ ImportPath string }
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if rel == "" {
			continue
		}
		allow, ok := rule(rel)
		if !ok {
			t.Errorf("package %s has no import rule: add it to DESIGN's layout (and this test)", rel)
			continue
		}
		depsOut, err := exec.Command("go", "list", "-f", `{{join .Deps "\n"}}`, p.ImportPath).Output()
		if err != nil {
			t.Fatalf("go list deps of %s: %v", rel, err)
		}
		for _, d := range strings.Split(string(depsOut), "\n") {
			if !strings.HasPrefix(d, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(d, module+"/")
			if !permitted(dep, allow) {
				t.Errorf("%s imports %s, which the layout forbids (allowed: %v)", rel, dep, allow)
			}
			if rel == "fuse" || strings.HasPrefix(rel, "fuse/") || rel == "s3api" || rel == "hdfsapi" || rel == "csi" {
				for _, f := range frontEndForbidden {
					if dep == f || strings.HasPrefix(dep, f+"/") {
						t.Errorf("front-end %s reaches %s", rel, dep)
					}
				}
			}
		}
		checked++
	}
	if checked < 8 {
		t.Fatalf("checked only %d packages", checked)
	}
}
