package conf

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestAllowedLocalRoots(t *testing.T) {
	if got := Default().Coordinator.AllowedLocalRoots; len(got) != 0 {
		t.Errorf("a cluster's default allows file:// mounts under %v; want none", got)
	}

	// The file, then the environment (comma-separated).
	p := filepath.Join(t.TempDir(), "strata.yaml")
	if err := os.WriteFile(p, []byte("coordinator:\n  allowed_local_roots: [/data, /scratch]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p, nil)
	if err != nil || c.Validate() != nil {
		t.Fatalf("Load = %v, Validate = %v", err, c.Validate())
	}
	if !slices.Equal(c.Coordinator.AllowedLocalRoots, []string{"/data", "/scratch"}) {
		t.Errorf("from the file: %v", c.Coordinator.AllowedLocalRoots)
	}
	c, err = Load(p, []string{"STRATA_COORDINATOR_ALLOWED_LOCAL_ROOTS=/mnt/a, /mnt/b"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Coordinator.AllowedLocalRoots, []string{"/mnt/a", "/mnt/b"}) {
		t.Errorf("from the environment: %v", c.Coordinator.AllowedLocalRoots)
	}

	// `strata local` allows anything, unless the user said otherwise.
	c = Default()
	LocalDefaults(&c)
	if !slices.Equal(c.Coordinator.AllowedLocalRoots, []string{AllowAnyLocalRoot}) {
		t.Errorf("LocalDefaults on the defaults: %v", c.Coordinator.AllowedLocalRoots)
	}
	c, _ = Load(p, nil)
	LocalDefaults(&c)
	if !slices.Equal(c.Coordinator.AllowedLocalRoots, []string{"/data", "/scratch"}) {
		t.Errorf("LocalDefaults overrode the file: %v", c.Coordinator.AllowedLocalRoots)
	}
	if err := os.WriteFile(p, []byte("coordinator:\n  allowed_local_roots: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, _ = Load(p, nil)
	LocalDefaults(&c)
	if len(c.Coordinator.AllowedLocalRoots) != 0 {
		t.Errorf("an explicit empty list must stay empty under LocalDefaults: %v", c.Coordinator.AllowedLocalRoots)
	}

	// Bad entries are all reported.
	c = Default()
	c.Coordinator.AllowedLocalRoots = []string{"*", "/ok", "relative/dir", " "}
	err = c.Validate()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate = %v", err)
	}
	for _, want := range []string{`"relative/dir" is not an absolute directory`, "an entry is empty"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), `"/ok"`) {
		t.Errorf("a good root was reported: %v", err)
	}
}
