package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"
)

// Role says how a system takes part in a comparison.
type Role string

// The roles a system can play.
const (
	RoleStrata  Role = "strata"  // a Strata front-end
	RolePeer    Role = "peer"    // an alternative a user would pick instead
	RoleCeiling Role = "ceiling" // an upper bound nobody can beat (local disk, loopback FUSE)
)

// Results is everything one run of the suite measured; it is written as JSON
// next to the generated document.
type Results struct {
	Started  time.Time   `json:"started"`
	Duration float64     `json:"duration_s"`
	Host     Host        `json:"host"`
	Runs     int         `json:"runs"`    // repetitions per figure
	Seed     int64       `json:"seed"`    // dataset generator seed
	Command  string      `json:"command"` // the command that produced the results
	Versions []Version   `json:"versions"`
	Groups   []*Workload `json:"workloads"`
}

// Host describes the machine the suite ran on.
type Host struct {
	CPUs      int    `json:"cpus"`
	MemoryGiB int    `json:"memory_gib"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
}

// Version names one tool the suite compared and its version.
type Version struct {
	System  string `json:"system"`
	Version string `json:"version"`
}

// Workload is one table (and one chart): systems down, cases across.
type Workload struct {
	ID             string    `json:"id"`    // short file-safe name: "big", "small", "s3-1mib"
	Title          string    `json:"title"` // "Big file: 1 GiB, sequential 1 MiB reads"
	Description    string    `json:"description"`
	Unit           string    `json:"unit"` // "MB/s", "files/s", "s", "ops/s"
	HigherIsBetter bool      `json:"higher_is_better"`
	Cases          []string  `json:"cases"` // column names: "cold", "warm", "hot"
	Series         []*Series `json:"series"`
}

// Series holds one system's figures in a workload, one Stat per case.
type Series struct {
	System string           `json:"system"` // "Strata FUSE (passthrough)", "rclone mount", ...
	Role   Role             `json:"role"`
	Values map[string]*Stat `json:"values"` // by case name; a missing case was not measured
}

// Stat is the repeated measurements of one figure.
type Stat struct {
	Runs   []float64 `json:"runs"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
	Err    string    `json:"error,omitempty"` // why the figure is missing or partial
}

// Add records one measurement and refreshes median, min and max.
func (s *Stat) Add(v float64) {
	s.Runs = append(s.Runs, v)
	sorted := slices.Clone(s.Runs)
	slices.Sort(sorted)
	s.Min, s.Max = sorted[0], sorted[len(sorted)-1]
	n := len(sorted)
	if n%2 == 1 {
		s.Median = sorted[n/2]
	} else {
		s.Median = (sorted[n/2-1] + sorted[n/2]) / 2
	}
}

// OK reports whether the figure has at least one measurement.
func (s *Stat) OK() bool { return s != nil && len(s.Runs) > 0 }

// SeriesFor returns the workload's series for a system, creating it.
func (w *Workload) SeriesFor(system string, role Role) *Series {
	for _, s := range w.Series {
		if s.System == system {
			return s
		}
	}
	s := &Series{System: system, Role: role, Values: map[string]*Stat{}}
	w.Series = append(w.Series, s)
	return s
}

// Stat returns the figure for a case, creating it.
func (s *Series) Stat(c string) *Stat {
	st := s.Values[c]
	if st == nil {
		st = &Stat{}
		s.Values[c] = st
	}
	return st
}

// WriteJSON writes the results to path.
func (r *Results) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadResults loads results written by WriteJSON.
func ReadResults(path string) (*Results, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}
