package conf

import (
	"errors"
	"fmt"
	"math"
)

// Cache lists the cache tiers of a worker, fastest first, and the knobs shared by
// all tiers. Fields documented "0 means the default" take the default at use time;
// negative or out-of-range values are reported by Validate, never clamped.
type Cache struct {
	Tiers []Tier `yaml:"tiers"`
	// UnhealthyFor is how long a disk directory that failed a write (ENOSPC, EIO,
	// read-only file system, permission) is skipped before writes are tried on it
	// again. 0 means the default, 1m.
	UnhealthyFor Duration `yaml:"unhealthy_for"`
	// SweepInterval is how often expired (TTL) files are freed and lapsed pins are
	// released. 0 means the default, 30s.
	SweepInterval Duration `yaml:"sweep_interval"`
	// MaxOpenFiles bounds the cached files kept open per disk directory. 0 means
	// the default, 1024.
	MaxOpenFiles int `yaml:"max_open_files"`
}

// Tier is one level of the cache: memory, or a set of directories on one class
// of disk.
type Tier struct {
	// Name is the tier's alias: mem, ssd or hdd (or any unique word).
	Name string `yaml:"name"`
	// Medium is "memory" or "disk".
	Medium string `yaml:"medium"`
	// Size is the byte budget of a memory tier (page bytes plus the per-page index
	// overhead). Disk tiers are sized by dirs[].quota and leave it 0.
	Size Size `yaml:"size"`
	// Dirs are the directories of a disk tier, each with its own budget.
	Dirs []TierDir `yaml:"dirs"`
	// Policy is the eviction policy: lru or lrfu.
	Policy string `yaml:"policy"`
	// Promote says when a hit in this tier moves the page to the top tier:
	// "always" (also when empty), "hits" (after PromoteHits hits while in this
	// tier) or "never". It has no effect on the top tier.
	Promote string `yaml:"promote"`
	// PromoteHits is N in "promote after N hits"; only with promote: hits, where it
	// must be at least 1.
	PromoteHits int `yaml:"promote_hits"`
	// LRFUStepFactor is LRFU's step factor in (0, 1]: smaller is closer to LFU,
	// larger closer to LRU. Only with policy lrfu; 0 means the default, 0.25.
	LRFUStepFactor float64 `yaml:"lrfu_step_factor"`
	// LRFUAttenuationFactor is LRFU's attenuation factor, at least 2. Only with
	// policy lrfu; 0 means the default, 2.
	LRFUAttenuationFactor float64 `yaml:"lrfu_attenuation_factor"`
	// VerifyChecksum makes a memory tier check each page's CRC32C on every read.
	// Disk tiers always verify.
	VerifyChecksum bool `yaml:"verify_checksum"`
}

// TierDir is one directory of a disk tier and its byte budget.
type TierDir struct {
	Path string `yaml:"path"`
	// Quota is the bytes the cache may use in the directory, its own metadata
	// (sidecars, file-system block rounding) included.
	Quota Size `yaml:"quota"`
}

// Defaults of the "0 means the default" fields of Cache and Tier.
const (
	DefaultUnhealthyFor          = Duration(60e9)
	DefaultSweepInterval         = Duration(30e9)
	DefaultMaxOpenFiles          = 1024
	DefaultLRFUStepFactor        = 0.25
	DefaultLRFUAttenuationFactor = 2.0
)

// Promotion rules (Tier.Promote).
const (
	PromoteAlways = "always"
	PromoteHits   = "hits"
	PromoteNever  = "never"
)

// DefaultCache is one memory tier of 1 GiB with LRU eviction.
func DefaultCache() Cache {
	return Cache{
		Tiers:         []Tier{{Name: "mem", Medium: "memory", Size: 1 << 30, Policy: "lru", Promote: PromoteAlways}},
		UnhealthyFor:  DefaultUnhealthyFor,
		SweepInterval: DefaultSweepInterval,
		MaxOpenFiles:  DefaultMaxOpenFiles,
	}
}

// Effective returns the cache with every "0 means the default" field filled in.
// It does not validate.
func (c Cache) Effective() Cache {
	if c.UnhealthyFor == 0 {
		c.UnhealthyFor = DefaultUnhealthyFor
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.MaxOpenFiles == 0 {
		c.MaxOpenFiles = DefaultMaxOpenFiles
	}
	tiers := make([]Tier, len(c.Tiers))
	for i, t := range c.Tiers {
		if t.Promote == "" {
			t.Promote = PromoteAlways
		}
		if t.Policy == "lrfu" {
			if t.LRFUStepFactor == 0 {
				t.LRFUStepFactor = DefaultLRFUStepFactor
			}
			if t.LRFUAttenuationFactor == 0 {
				t.LRFUAttenuationFactor = DefaultLRFUAttenuationFactor
			}
		}
		t.Dirs = append([]TierDir(nil), t.Dirs...)
		tiers[i] = t
	}
	c.Tiers = tiers
	return c
}

// Validate reports every problem of the cache section at once (each wrapping
// ErrInvalid), or nil.
func (c Cache) Validate() error { return errors.Join(c.validate()...) }

func (c Cache) validate() []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalid, field, fmt.Sprintf(format, args...)))
	}
	if len(c.Tiers) == 0 {
		bad("worker.cache.tiers", "at least one tier is needed")
	}
	if c.UnhealthyFor < 0 {
		bad("worker.cache.unhealthy_for", "must not be negative")
	}
	if c.SweepInterval < 0 {
		bad("worker.cache.sweep_interval", "must not be negative")
	}
	if c.MaxOpenFiles < 0 {
		bad("worker.cache.max_open_files", "must not be negative")
	}
	seen := map[string]bool{}
	dirs := map[string]string{}
	for i, t := range c.Tiers {
		f := fmt.Sprintf("worker.cache.tiers[%d]", i)
		if t.Name == "" {
			bad(f+".name", "must not be empty")
		} else if seen[t.Name] {
			bad(f+".name", "%q is used twice", t.Name)
		}
		seen[t.Name] = true
		switch t.Policy {
		case "lru", "lrfu":
		default:
			bad(f+".policy", "%q is not one of lru, lrfu", t.Policy)
		}
		if t.Policy != "lrfu" {
			if t.LRFUStepFactor != 0 {
				bad(f+".lrfu_step_factor", "only used with policy lrfu")
			}
			if t.LRFUAttenuationFactor != 0 {
				bad(f+".lrfu_attenuation_factor", "only used with policy lrfu")
			}
		} else {
			if s := t.LRFUStepFactor; math.IsNaN(s) || s < 0 || s > 1 {
				bad(f+".lrfu_step_factor", "%v is not in (0, 1] (0 means the default %v)", s, DefaultLRFUStepFactor)
			}
			if a := t.LRFUAttenuationFactor; math.IsNaN(a) || math.IsInf(a, 0) || (a != 0 && a < 2) {
				bad(f+".lrfu_attenuation_factor", "%v is below 2 (0 means the default %v)", a, DefaultLRFUAttenuationFactor)
			}
		}
		switch t.Promote {
		case "", PromoteAlways, PromoteNever:
			if t.PromoteHits != 0 {
				bad(f+".promote_hits", "only used with promote: hits")
			}
		case PromoteHits:
			if t.PromoteHits < 1 {
				bad(f+".promote_hits", "%d: promote: hits needs promote_hits of at least 1", t.PromoteHits)
			}
		default:
			bad(f+".promote", "%q is not one of always, hits, never", t.Promote)
		}
		switch t.Medium {
		case "memory":
			if t.Size <= 0 {
				bad(f+".size", "a memory tier needs a positive size")
			}
			if len(t.Dirs) > 0 {
				bad(f+".dirs", "a memory tier has no directories")
			}
		case "disk":
			if t.Size != 0 {
				bad(f+".size", "a disk tier is sized by dirs[].quota; leave size unset")
			}
			if len(t.Dirs) == 0 {
				bad(f+".dirs", "a disk tier needs at least one directory")
			}
			for j, d := range t.Dirs {
				df := fmt.Sprintf("%s.dirs[%d]", f, j)
				if d.Path == "" {
					bad(df+".path", "must not be empty")
				} else if prev, dup := dirs[d.Path]; dup {
					bad(df+".path", "%q is also %s", d.Path, prev)
				} else {
					dirs[d.Path] = df
				}
				if d.Quota <= 0 {
					bad(df+".quota", "must be positive")
				}
			}
		default:
			bad(f+".medium", "%q is not one of memory, disk", t.Medium)
		}
	}
	return errs
}
