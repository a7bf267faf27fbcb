package conf

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid is wrapped by every parse and validation error of this package.
var ErrInvalid = errors.New("conf: invalid value")

// Size is a byte count that reads and writes in human units ("64MiB", "1.5GB",
// "4096"). Binary (KiB, MiB, GiB, TiB) and decimal (KB, MB, GB, TB) suffixes are
// both accepted; a bare number is bytes.
type Size int64

var sizeUnits = []struct {
	suffix string
	mult   float64
}{
	{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"TIB", 1 << 40}, {"PIB", 1 << 50},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"PB", 1e15},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40},
	{"B", 1},
}

// ParseSize parses a size such as "64MiB", "512KB" or "1048576".
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("%w: empty size", ErrInvalid)
	}
	up := strings.ToUpper(t)
	mult := 1.0
	for _, u := range sizeUnits {
		if strings.HasSuffix(up, u.suffix) {
			mult = u.mult
			up = strings.TrimSpace(up[:len(up)-len(u.suffix)])
			break
		}
	}
	f, err := strconv.ParseFloat(up, 64)
	if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%w: size %q: want a non-negative number with an optional unit such as 64MiB or 1GB", ErrInvalid, s)
	}
	v := f * mult
	if v > math.MaxInt64 {
		return 0, fmt.Errorf("%w: size %q is too large", ErrInvalid, s)
	}
	return Size(v), nil
}

// String renders the size in the largest binary unit that divides it exactly.
func (s Size) String() string {
	units := []struct {
		name string
		v    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
	for _, u := range units {
		if s != 0 && int64(s)%u.v == 0 {
			return fmt.Sprintf("%d%s", int64(s)/u.v, u.name)
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// Human renders the size rounded to one decimal in the largest fitting binary unit
// (for reports, not for round trips).
func (s Size) Human() string {
	v := float64(s)
	for _, u := range []string{"B", "KiB", "MiB", "GiB", "TiB"} {
		if v < 1024 || u == "TiB" {
			if u == "B" {
				return fmt.Sprintf("%d B", int64(s))
			}
			return fmt.Sprintf("%.1f %s", v, u)
		}
		v /= 1024
	}
	return ""
}

// Set implements pflag.Value.
func (s *Size) Set(v string) error {
	p, err := ParseSize(v)
	if err != nil {
		return err
	}
	*s = p
	return nil
}

// Type implements pflag.Value.
func (s *Size) Type() string { return "size" }

// UnmarshalYAML accepts both numbers and strings with units.
func (s *Size) UnmarshalYAML(unmarshal func(any) error) error {
	var raw string
	if err := unmarshal(&raw); err != nil {
		return err
	}
	return s.Set(raw)
}

// MarshalYAML writes the size with a unit.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// Duration is a time.Duration that reads and writes as "30s", "5m", "24h".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String implements fmt.Stringer.
func (d Duration) String() string { return time.Duration(d).String() }

// Set implements pflag.Value.
func (d *Duration) Set(v string) error {
	p, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("%w: duration %q: want a value such as 500ms, 30s or 5m", ErrInvalid, v)
	}
	*d = Duration(p)
	return nil
}

// Type implements pflag.Value.
func (d *Duration) Type() string { return "duration" }

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(unmarshal func(any) error) error {
	var raw string
	if err := unmarshal(&raw); err != nil {
		return err
	}
	return d.Set(raw)
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }
