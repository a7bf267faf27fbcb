package namespace

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/stratafs/strata/ufs"
)

// Write modes of a mount.
const (
	// WriteCacheThrough: the UFS has the data when close returns; the pages are
	// cached too.
	WriteCacheThrough = "CACHE_THROUGH"
	// WriteThrough: the data goes to the UFS only.
	WriteThrough = "THROUGH"
)

// Mount attaches an under-storage location at a namespace path.
type Mount struct {
	// ID is assigned when the mount is created and is part of every cache key,
	// so a path mounted again elsewhere never sees the old mount's pages.
	ID string `json:"id"`
	// Path is the clean absolute mount point.
	Path string `json:"path"`
	// URI is the under-storage location (s3://bucket/prefix, file:///dir, ...).
	URI string `json:"uri"`
	// Options are the backend options, credentials included.
	Options ufs.Options `json:"options,omitempty"`
	// ReadOnly refuses every write through Strata.
	ReadOnly bool `json:"read_only,omitempty"`
	// WriteMode is WriteCacheThrough or WriteThrough.
	WriteMode string `json:"write_mode,omitempty"`
	// MetadataTTL overrides the worker's metadata cache TTL; negative means
	// "use the worker default".
	MetadataTTL time.Duration `json:"metadata_ttl"`
	// Replicas is how many owners cache each block (1 = no copies).
	Replicas int `json:"replicas,omitempty"`
	// Created is when the mount was added.
	Created time.Time `json:"created"`
}

// Validate checks the fields that do not need the network.
func (m Mount) Validate() error {
	p, err := Clean(m.Path)
	if err != nil {
		return err
	}
	if p != m.Path {
		return fmt.Errorf("%w: mount point %q is not in clean form (%q)", ErrInvalidPath, m.Path, p)
	}
	if _, err := ufs.ParseURI(m.URI); err != nil {
		return err
	}
	switch m.WriteMode {
	case "", WriteCacheThrough, WriteThrough:
	default:
		return fmt.Errorf("%w: write mode %q: use %s or %s", ufs.ErrInvalidURI, m.WriteMode, WriteCacheThrough, WriteThrough)
	}
	if m.Replicas < 0 {
		return fmt.Errorf("%w: replicas must not be negative", ufs.ErrInvalidURI)
	}
	return nil
}

// Masked returns a copy whose secret options read "****".
func (m Mount) Masked() Mount {
	m.Options = m.Options.Masked()
	return m
}

// Table is an immutable mount table. Build a new one on every change and swap
// it in whole; readers need no lock. The zero value is an empty table.
type Table struct {
	mounts []Mount // sorted by Path
	byPath map[string]int
	byID   map[string]int
}

// NewTable builds a table and checks that no mount point lies inside another.
func NewTable(mounts []Mount) (*Table, error) {
	t := &Table{mounts: slices.Clone(mounts), byPath: map[string]int{}, byID: map[string]int{}}
	sort.Slice(t.mounts, func(i, j int) bool { return t.mounts[i].Path < t.mounts[j].Path })
	for i, m := range t.mounts {
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("mount %s: %w", m.Path, err)
		}
		for _, o := range t.mounts[:i] {
			if conflict(o.Path, m.Path) {
				return nil, fmt.Errorf("%w: %s and %s", ErrMountConflict, o.Path, m.Path)
			}
		}
		t.byPath[m.Path] = i
		t.byID[m.ID] = i
	}
	return t, nil
}

func conflict(a, b string) bool { return IsWithin(a, b) || IsWithin(b, a) }

// CheckNew reports whether a mount at path could be added: it must be clean,
// absolute, and neither equal to, inside, nor above an existing mount point.
func (t *Table) CheckNew(path string) error {
	p, err := Clean(path)
	if err != nil {
		return err
	}
	if p != path {
		return fmt.Errorf("%w: mount point %q is not in clean form; use %q", ErrInvalidPath, path, p)
	}
	for _, m := range t.All() {
		switch {
		case m.Path == p:
			return fmt.Errorf("%w: %s is already a mount point (of %s)", ErrMountConflict, p, m.URI)
		case IsWithin(p, m.Path):
			return fmt.Errorf("%w: %s lies inside the mount %s (of %s); mount elsewhere or unmount that first", ErrMountConflict, p, m.Path, m.URI)
		case IsWithin(m.Path, p):
			return fmt.Errorf("%w: %s lies above the mount %s; mount elsewhere or unmount that first", ErrMountConflict, p, m.Path)
		}
	}
	return nil
}

// All returns the mounts sorted by path. The slice must not be modified.
func (t *Table) All() []Mount {
	if t == nil {
		return nil
	}
	return t.mounts
}

// Len is the number of mounts.
func (t *Table) Len() int { return len(t.All()) }

// ByPath returns the mount whose mount point is exactly path.
func (t *Table) ByPath(path string) (Mount, bool) {
	if t == nil {
		return Mount{}, false
	}
	i, ok := t.byPath[path]
	if !ok {
		return Mount{}, false
	}
	return t.mounts[i], true
}

// ByID returns the mount with the given id.
func (t *Table) ByID(id string) (Mount, bool) {
	if t == nil {
		return Mount{}, false
	}
	i, ok := t.byID[id]
	if !ok {
		return Mount{}, false
	}
	return t.mounts[i], true
}

// Resolve finds the mount holding the clean path p (longest prefix) and the
// path relative to the mount's root in UFS form ("" for the mount point).
// Returns ErrNoMount when p lies in no mount.
func (t *Table) Resolve(p string) (Mount, string, error) {
	if t != nil && len(t.mounts) > 0 {
		// Mount points never nest, so at most one ancestor of p (p included) is
		// a mount point: probe each ancestor, longest first.
		for q := p; ; q = Parent(q) {
			if i, ok := t.byPath[q]; ok {
				m := t.mounts[i]
				return m, strings.TrimPrefix(strings.TrimPrefix(p, q), "/"), nil
			}
			if q == "/" {
				break
			}
		}
	}
	return Mount{}, "", fmt.Errorf("%w: %s (see `strata fs mounts`)", ErrNoMount, p)
}

// VirtualChildren returns the names of the synthetic directories directly below
// p that lead to mount points (p itself being above one or more mounts), and
// whether p is such a synthetic directory. "/" is always one.
func (t *Table) VirtualChildren(p string) ([]string, bool) {
	seen := map[string]bool{}
	var names []string
	for _, m := range t.All() {
		if m.Path == p || !IsWithin(m.Path, p) {
			continue
		}
		rest := strings.TrimPrefix(m.Path, p)
		rest = strings.TrimPrefix(rest, "/")
		name, _, _ := strings.Cut(rest, "/")
		if !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	return names, len(names) > 0 || p == "/"
}

// Specs maps each mount ID to how its UFS is opened (for ufs.Pool.Prune).
func (t *Table) Specs() map[string]ufs.Spec {
	live := map[string]ufs.Spec{}
	for _, m := range t.All() {
		live[m.ID] = ufs.Spec{URI: m.URI, Options: m.Options}
	}
	return live
}
