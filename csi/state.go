package csi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// record is what the driver remembers of one staged volume, in a file of its
// state directory, so that a restarted driver can mount it again and re-bind
// the targets it was published at.
type record struct {
	// VolumeID is the CSI volume ID.
	VolumeID string `json:"volume_id"`
	// Path is the namespace directory shown.
	Path string `json:"path"`
	// Staging is where the FUSE file system is mounted.
	Staging string `json:"staging"`
	// Targets are the bind mounts of Staging, with whether each is read-only.
	Targets map[string]bool `json:"targets"`
}

// stateStore keeps one JSON file per staged volume in a directory. Not safe
// for concurrent use on the same record; the driver serializes per volume.
type stateStore struct {
	dir string
}

// openState creates the directory when missing.
func openState(dir string) (*stateStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("csi: state directory: %w", err)
	}
	return &stateStore{dir: dir}, nil
}

// file is the record file of a staging path.
func (s *stateStore) file(staging string) string {
	sum := sha256.Sum256([]byte(staging))
	return filepath.Join(s.dir, "vol-"+hex.EncodeToString(sum[:12])+".json")
}

// save writes a record atomically (temporary file, fsync, rename).
func (s *stateStore) save(r record) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	dst := s.file(r.Staging)
	tmp, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("csi: save state: %w", err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("csi: save state of %s: %w", r.Staging, err)
	}
	return nil
}

// remove deletes the record of a staging path; a missing one is no error.
func (s *stateStore) remove(staging string) error {
	if err := os.Remove(s.file(staging)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("csi: remove state of %s: %w", staging, err)
	}
	return nil
}

// load reads every record. Unreadable files are returned as errors beside
// the records that could be read (and left in place for a person to see).
func (s *stateStore) load() ([]record, []error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, []error{fmt.Errorf("csi: read state directory: %w", err)}
	}
	var recs []record
	var errs []error
	for _, e := range ents {
		name := e.Name()
		if strings.HasPrefix(name, ".tmp-") {
			_ = os.Remove(filepath.Join(s.dir, name)) // a save cut short
			continue
		}
		if !strings.HasPrefix(name, "vol-") || !strings.HasSuffix(name, ".json") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(s.dir, name))
		if err != nil {
			errs = append(errs, fmt.Errorf("csi: state file %s: %w", name, err))
			continue
		}
		var r record
		if err := json.Unmarshal(b, &r); err != nil || r.Staging == "" || r.VolumeID == "" {
			errs = append(errs, fmt.Errorf("csi: state file %s is not a volume record (%v)", name, err))
			continue
		}
		if r.Targets == nil {
			r.Targets = map[string]bool{}
		}
		recs = append(recs, r)
	}
	return recs, errs
}
