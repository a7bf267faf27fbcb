package conf

import (
	"fmt"
	"path/filepath"
	"strings"
)

// AllowAnyLocalRoot is the coordinator.allowed_local_roots entry that allows a
// file:// mount of any directory.
const AllowAnyLocalRoot = "*"

// LocalDefaults applies what `strata local` (a single-user development
// setup) changes in the defaults: file:// mounts of any directory, unless
// the file or the environment set coordinator.allowed_local_roots. Call it
// after Load (file and environment) and before the flags.
func LocalDefaults(cfg *Config) {
	if cfg.Coordinator.AllowedLocalRoots == nil {
		cfg.Coordinator.AllowedLocalRoots = []string{AllowAnyLocalRoot}
	}
}

// validate checks the coordinator settings that live in this file.
func (c Coordinator) validate() []error {
	var errs []error
	for _, r := range c.AllowedLocalRoots {
		switch {
		case r == AllowAnyLocalRoot:
		case strings.TrimSpace(r) == "":
			errs = append(errs, fmt.Errorf("%w: coordinator.allowed_local_roots: an entry is empty; write an absolute directory or %q", ErrInvalid, AllowAnyLocalRoot))
		case !filepath.IsAbs(r):
			errs = append(errs, fmt.Errorf("%w: coordinator.allowed_local_roots: %q is not an absolute directory (or %q for any)", ErrInvalid, r, AllowAnyLocalRoot))
		case strings.ContainsRune(r, 0):
			errs = append(errs, fmt.Errorf("%w: coordinator.allowed_local_roots: %q contains a NUL byte", ErrInvalid, r))
		}
	}
	return errs
}
