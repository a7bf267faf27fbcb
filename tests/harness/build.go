package harness

import (
	"os/exec"
	"path/filepath"
)

// BuildStrata builds the strata binary into a temp dir and returns its path.
func BuildStrata(t TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "strata")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/stratafs/strata/cmd/strata").CombinedOutput()
	if err != nil {
		t.Fatalf("harness: build strata: %v\n%s", err, out)
	}
	return bin
}
