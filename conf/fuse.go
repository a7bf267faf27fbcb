package conf

import (
	"errors"
	"fmt"
)

// FUSE configures the FUSE front-end (`strata fuse mount`, `strata local
// --fuse`). docs/fuse.md explains each knob and its measured effect.
type FUSE struct {
	// AttrTimeout and EntryTimeout are how long the kernel caches attributes
	// and names. Long timeouts make repeated stats of a dataset nearly free;
	// changes made by other clients show up after them.
	AttrTimeout  Duration `yaml:"attr_timeout"`
	EntryTimeout Duration `yaml:"entry_timeout"`
	// NegativeTimeout is how long the kernel remembers that a name does not
	// exist (0 disables it).
	NegativeTimeout Duration `yaml:"negative_timeout"`
	// MaxRead and MaxWrite bound one FUSE read and write request (4KiB to
	// 1MiB, multiples of 4KiB). Large values mean fewer round trips.
	MaxRead  Size `yaml:"max_read"`
	MaxWrite Size `yaml:"max_write"`
	// ReadAhead is the window a sequential reader of one open file fetches
	// ahead through the daemon (two windows are kept in flight); 0 disables
	// the daemon's read-ahead.
	ReadAhead Size `yaml:"read_ahead"`
	// ReadAheadBudget bounds the memory all read-ahead windows of the mount
	// use together; readers beyond it read without read-ahead.
	ReadAheadBudget Size `yaml:"read_ahead_budget"`
	// KernelReadAhead, when not 0, is written to the mount's
	// /sys/class/bdi/<dev>/read_ahead_kb after mounting (multiples of 4KiB):
	// the kernel then asks for up to this much per sequential read instead
	// of 128KiB. 0 leaves the kernel default.
	KernelReadAhead Size `yaml:"kernel_read_ahead"`
	// MaxBackground bounds the kernel's asynchronous requests (read-ahead)
	// in flight at once.
	MaxBackground int `yaml:"max_background"`
	// Passthrough hands files that are fully cached on a disk tier of a
	// worker in the same process to the kernel (FUSE passthrough, Linux ≥
	// 6.9, root): reads then bypass the daemon entirely.
	Passthrough bool `yaml:"passthrough"`
	// StagingDir holds files opened for random writes until they are
	// uploaded on close or fsync. A relative path is under data_dir.
	StagingDir string `yaml:"staging_dir"`
	// XAttrs lets extended-attribute requests reach the daemon (which has
	// none to offer). Off, the kernel never asks, which makes `ls -l` and
	// writes much faster.
	XAttrs bool `yaml:"xattrs"`
	// LocalLocks lets the kernel grant flock and POSIX locks itself: they
	// then exclude processes of this host only, not of other hosts mounting
	// the same data. Off, lock requests fail with ENOLCK.
	LocalLocks bool `yaml:"local_locks"`
	// AllowOther lets users other than the one who mounted use the mount
	// (the kernel then checks the permission bits: default_permissions).
	AllowOther bool `yaml:"allow_other"`
	// Debug logs every FUSE request and reply (very verbose).
	Debug bool `yaml:"debug"`
}

// DefaultFUSE is the FUSE front-end's default configuration.
func DefaultFUSE() FUSE {
	return FUSE{
		AttrTimeout:     Duration(60e9),
		EntryTimeout:    Duration(60e9),
		NegativeTimeout: Duration(1e9),
		MaxRead:         1 << 20,
		MaxWrite:        1 << 20,
		ReadAhead:       8 << 20,
		ReadAheadBudget: 512 << 20,
		KernelReadAhead: 1 << 20,
		MaxBackground:   64,
		Passthrough:     true,
		StagingDir:      "fuse-staging",
	}
}

// Limits of the FUSE knobs.
const (
	// FUSEMaxRequest is the largest read or write request the kernel sends
	// (256 pages).
	FUSEMaxRequest = 1 << 20
	fuseMinRequest = 4 << 10
)

func (f FUSE) validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: fuse.%s: %s", ErrInvalid, field, fmt.Sprintf(format, args...)))
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{{"attr_timeout", f.AttrTimeout}, {"entry_timeout", f.EntryTimeout}, {"negative_timeout", f.NegativeTimeout}} {
		if d.v < 0 {
			bad(d.name, "%s must not be negative", d.v)
		}
	}
	for _, s := range []struct {
		name string
		v    Size
	}{{"max_read", f.MaxRead}, {"max_write", f.MaxWrite}} {
		if s.v < fuseMinRequest || s.v > FUSEMaxRequest || s.v%4096 != 0 {
			bad(s.name, "%s must be a multiple of 4KiB between 4KiB and 1MiB", s.v)
		}
	}
	if f.ReadAhead < 0 {
		bad("read_ahead", "must not be negative")
	} else if f.ReadAhead != 0 && f.ReadAhead < f.MaxRead {
		bad("read_ahead", "%s is below max_read (%s); use 0 to disable read-ahead", f.ReadAhead, f.MaxRead)
	}
	if f.ReadAheadBudget < 0 {
		bad("read_ahead_budget", "must not be negative")
	} else if f.ReadAhead > 0 && f.ReadAheadBudget < 2*f.ReadAhead {
		bad("read_ahead_budget", "%s cannot hold the two windows of one reader (2 × read_ahead %s)", f.ReadAheadBudget, f.ReadAhead)
	}
	if f.KernelReadAhead < 0 || f.KernelReadAhead%4096 != 0 {
		bad("kernel_read_ahead", "%s must be 0 or a positive multiple of 4KiB", f.KernelReadAhead)
	}
	if f.MaxBackground < 1 || f.MaxBackground > 65535 {
		bad("max_background", "%d is not between 1 and 65535", f.MaxBackground)
	}
	if f.StagingDir == "" {
		bad("staging_dir", "must not be empty")
	}
	return errs
}

// Validate reports every problem of the FUSE section at once (each wrapping
// ErrInvalid), or nil.
func (f FUSE) Validate() error { return errors.Join(f.validate()...) }
