// Package cluster holds the state Strata shares through etcd: the key layout,
// the mount store, worker and coordinator registrations under leases, a
// watcher that keeps a live view of mounts and members, and the placement ring.
package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// ErrConflict means a concurrent change won an optimistic transaction too many
// times in a row; retrying later is safe.
var ErrConflict = errors.New("cluster: concurrent update, try again")

// Keys is the etcd key layout under a prefix (conf.Etcd.Prefix).
type Keys struct{ Prefix string }

// Mounts is the prefix of mount records.
func (k Keys) Mounts() string { return k.Prefix + "/mounts/" }

// Mount is the key of the mount at a namespace path.
func (k Keys) Mount(path string) string { return k.Mounts() + url.PathEscape(path) }

// MountsRev is bumped with every mount change (the optimistic-lock key).
func (k Keys) MountsRev() string { return k.Prefix + "/meta/mounts-rev" }

// Workers is the prefix of worker registrations.
func (k Keys) Workers() string { return k.Prefix + "/workers/" }

// Worker is the key of one worker's registration.
func (k Keys) Worker(id string) string { return k.Workers() + id }

// Coordinators is the prefix of coordinator registrations.
func (k Keys) Coordinators() string { return k.Prefix + "/coordinators/" }

// Coordinator is the key of one coordinator's registration.
func (k Keys) Coordinator(id string) string { return k.Coordinators() + id }

// Worker states.
const (
	StateJoining  = "joining"
	StateServing  = "serving"
	StateDraining = "draining"
)

// WorkerInfo is what a worker publishes about itself.
type WorkerInfo struct {
	ID       string `json:"id"`
	Host     string `json:"host"`
	RPCAddr  string `json:"rpc_addr"`
	DataAddr string `json:"data_addr"`
	// DataTLS says the data port speaks TLS (worker.data_tls).
	DataTLS  bool      `json:"data_tls,omitempty"`
	State    string    `json:"state"`
	Capacity int64     `json:"capacity"`
	Started  time.Time `json:"started"`
	Version  string    `json:"version,omitempty"`
	// Degraded lists the cache directories the worker skips after a failed
	// write (a full file system, an I/O error): its tiers hold less than
	// Capacity says until they recover. Empty when healthy.
	Degraded []DirHealth `json:"degraded,omitempty"`
}

// DirHealth describes a cache directory that is out of use for writes.
type DirHealth struct {
	Tier string `json:"tier"`
	Dir  string `json:"dir"`
	// NoSpace is true when the failure was ENOSPC or EDQUOT (the file
	// system is full).
	NoSpace bool `json:"no_space,omitempty"`
	// Error is the failed write's error.
	Error string `json:"error"`
	// Since is when the write failed; Until when the directory is tried
	// again.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
}

// String describes the directory's trouble in one line.
func (d DirHealth) String() string {
	what := "failed a write"
	if d.NoSpace {
		what = "is full (no space left on the file system)"
	}
	return fmt.Sprintf("tier %s, directory %s %s at %s, skipped until %s: %s", d.Tier, d.Dir, what,
		d.Since.UTC().Format(time.RFC3339), d.Until.UTC().Format(time.RFC3339), d.Error)
}

// CoordinatorInfo is what a coordinator publishes about itself.
type CoordinatorInfo struct {
	ID      string    `json:"id"`
	Addr    string    `json:"addr"`
	Started time.Time `json:"started"`
}

func decodeJSON[T any](b []byte) (T, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}

func keyTail(key, prefix string) string { return strings.TrimPrefix(key, prefix) }

// Drain is the key whose presence asks a worker to drain: it leaves the
// placement ring (no new placements) but keeps serving what it holds.
func (k Keys) Drain(id string) string { return k.Prefix + "/drain/" + id }

// Leader is the election prefix of the coordinators.
func (k Keys) Leader() string { return k.Prefix + "/leader" }

// Jobs is the prefix of load job records (JSON of rpcpb.LoadJob).
func (k Keys) Jobs() string { return k.Prefix + "/jobs/" }

// Job is the key of one load job's record.
func (k Keys) Job(id string) string { return k.Jobs() + id }

// JobStops is the prefix of stop requests for load jobs.
func (k Keys) JobStops() string { return k.Prefix + "/job-stops/" }

// JobStop is the key whose presence asks the leader to stop a load job.
func (k Keys) JobStop(id string) string { return k.JobStops() + id }

// Pins is the prefix of pinned namespace paths.
func (k Keys) Pins() string { return k.Prefix + "/pins/" }

// Pin is the key of the pin of a namespace path.
func (k Keys) Pin(path string) string { return k.Pins() + url.PathEscape(path) }

// JobQueue is the prefix of the active (pending or running) load jobs: one
// empty key per job, deleted when the job ends, so the leader finds the work
// to resume without reading every finished job.
func (k Keys) JobQueue() string { return k.Prefix + "/job-queue/" }

// JobQueued is the queue key of an active load job.
func (k Keys) JobQueued(id string) string { return k.JobQueue() + id }
