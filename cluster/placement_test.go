package cluster

import "testing"

func TestStatKeyIsTheParentsMetaKey(t *testing.T) {
	for rel, dir := range map[string]string{
		"":             "",
		"a":            "",
		"a/b":          "a",
		"a/b/c.jpg":    "a/b",
		"dir with/ü x": "dir with",
	} {
		if got, want := StatKey("m1", rel), MetaKey("m1", dir); got != want {
			t.Errorf("StatKey(%q) = %q, want MetaKey(%q) = %q", rel, got, dir, want)
		}
	}
	if StatKey("m1", "a/b") == StatKey("m2", "a/b") {
		t.Error("two mounts share a stat key")
	}
}
