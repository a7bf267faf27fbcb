package ufs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"sync"
)

// Spec says how to open one FS: a URI and its options.
type Spec struct {
	URI     string
	Options Options
}

func (s Spec) signature() string {
	h := sha256.New()
	h.Write([]byte(s.URI))
	for _, k := range slices.Sorted(maps.Keys(s.Options)) {
		h.Write([]byte("\x00" + k + "=" + s.Options[k]))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Pool keeps one open FS per key (a mount ID), opened on first use and
// reopened when the key's Spec changes. Safe for concurrent use.
type Pool struct {
	reg *Registry
	mu  sync.Mutex
	fss map[string]poolEntry
}

type poolEntry struct {
	sig string
	fs  FS
}

// NewPool returns an empty pool opening FSes through reg.
func NewPool(reg *Registry) *Pool {
	return &Pool{reg: reg, fss: map[string]poolEntry{}}
}

// Get returns the FS for key, opening it (again) when absent or when spec
// differs from the one it was opened with.
func (p *Pool) Get(ctx context.Context, key string, spec Spec) (FS, error) {
	sig := spec.signature()
	p.mu.Lock()
	e, ok := p.fss[key]
	p.mu.Unlock()
	if ok && e.sig == sig {
		return e.fs, nil
	}
	fs, err := p.reg.Open(ctx, spec.URI, spec.Options)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, ok := p.fss[key]; ok {
		if cur.sig == sig {
			_ = fs.Close()
			return cur.fs, nil
		}
		_ = cur.fs.Close()
	}
	p.fss[key] = poolEntry{sig: sig, fs: fs}
	return fs, nil
}

// Prune closes every FS whose key is not in live or whose spec changed.
func (p *Pool) Prune(live map[string]Spec) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for key, e := range p.fss {
		if spec, ok := live[key]; !ok || spec.signature() != e.sig {
			errs = append(errs, e.fs.Close())
			delete(p.fss, key)
		}
	}
	return errors.Join(errs...)
}

// Close closes every FS.
func (p *Pool) Close() error { return p.Prune(nil) }
