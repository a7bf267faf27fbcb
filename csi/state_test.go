package csi

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestStateStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := openState(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := record{VolumeID: "dir:/v/a", Path: "/v/a", Staging: "/k/staging/a", Targets: map[string]bool{"/k/pods/1": false, "/k/pods/2": true}}
	b := record{VolumeID: "/datasets", Path: "/datasets", Staging: "/k/staging/b", Targets: map[string]bool{}}
	for _, r := range []record{a, b} {
		if err := s.save(r); err != nil {
			t.Fatal(err)
		}
	}
	a.Targets["/k/pods/3"] = false
	if err := s.save(a); err != nil {
		t.Fatal(err)
	}
	// Debris of a save cut short, and a file that is not a record.
	if err := os.WriteFile(filepath.Join(dir, ".tmp-123"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vol-bad.json"), []byte("not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	recs, errs := s.load()
	if len(errs) != 1 {
		t.Errorf("load errors: %v, want one for vol-bad.json", errs)
	}
	got := map[string]record{}
	for _, r := range recs {
		got[r.Staging] = r
	}
	if !reflect.DeepEqual(got, map[string]record{a.Staging: a, b.Staging: b}) {
		t.Errorf("loaded %+v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-123")); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	if err := s.remove(a.Staging); err != nil {
		t.Fatal(err)
	}
	if err := s.remove(a.Staging); err != nil {
		t.Errorf("removing twice: %v", err)
	}
	recs, _ = s.load()
	if len(recs) != 1 || recs[0].Staging != b.Staging {
		t.Errorf("after remove: %+v", recs)
	}
	if got := targetsOf(a); !reflect.DeepEqual(got, []string{"/k/pods/1", "/k/pods/2", "/k/pods/3"}) {
		t.Errorf("targetsOf: %v", got)
	}
}
