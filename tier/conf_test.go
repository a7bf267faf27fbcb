package tier

import (
	"errors"
	"strings"
	"testing"

	"github.com/stratafs/strata/conf"
)

// TestCacheConfigValidation covers conf.Cache.Validate, which this package
// owns: every problem is reported, nothing is clamped.
func TestCacheConfigValidation(t *testing.T) {
	good := conf.Cache{Tiers: []conf.Tier{
		{Name: "mem", Medium: "memory", Size: 1 << 30, Policy: "lru"},
		{Name: "ssd", Medium: "disk", Policy: "lrfu", LRFUStepFactor: 0.5, LRFUAttenuationFactor: 4,
			Promote: conf.PromoteHits, PromoteHits: 2, Dirs: []conf.TierDir{{Path: "/a", Quota: 1 << 30}}},
	}}
	if err := good.Validate(); err != nil {
		t.Fatalf("good config: %v", err)
	}
	if err := conf.DefaultCache().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	eff := conf.Cache{Tiers: []conf.Tier{{Name: "x", Medium: "disk", Policy: "lrfu", Dirs: []conf.TierDir{{Path: "/a", Quota: 1}}}}}.Effective()
	if eff.UnhealthyFor != conf.DefaultUnhealthyFor || eff.Tiers[0].Promote != conf.PromoteAlways ||
		eff.Tiers[0].LRFUStepFactor != conf.DefaultLRFUStepFactor || eff.MaxOpenFiles != conf.DefaultMaxOpenFiles {
		t.Fatalf("defaults not filled in: %+v", eff)
	}
	bad := conf.Cache{
		UnhealthyFor: -1, SweepInterval: -1, MaxOpenFiles: -1,
		Tiers: []conf.Tier{
			{Name: "mem", Medium: "memory", Size: 0, Policy: "lru", LRFUStepFactor: 0.5, Dirs: []conf.TierDir{{Path: "/m", Quota: 1}}},
			{Name: "mem", Medium: "disk", Size: 5, Policy: "lrfu", LRFUStepFactor: 2, LRFUAttenuationFactor: 1.5,
				Promote: "sometimes", Dirs: []conf.TierDir{{Path: "/a", Quota: 0}, {Path: "/a", Quota: 1}}},
			{Name: "hdd", Medium: "tape", Policy: "fifo", Promote: conf.PromoteHits},
			{Name: "x", Medium: "disk", Policy: "lru", Promote: conf.PromoteNever, PromoteHits: 3},
		},
	}
	err := bad.Validate()
	if !errors.Is(err, conf.ErrInvalid) {
		t.Fatalf("bad config: %v", err)
	}
	for _, want := range []string{
		"unhealthy_for", "sweep_interval", "max_open_files",
		"tiers[0].size", "tiers[0].lrfu_step_factor", "tiers[0].dirs",
		"tiers[1].name", "tiers[1].size", "tiers[1].lrfu_step_factor", "tiers[1].lrfu_attenuation_factor",
		"tiers[1].promote", "tiers[1].dirs[0].quota", "tiers[1].dirs[1].path",
		"tiers[2].medium", "tiers[2].policy", "tiers[2].promote_hits",
		"tiers[3].promote_hits", "tiers[3].dirs",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no report for %s in:\n%v", want, err)
		}
	}
}
