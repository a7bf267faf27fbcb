// Package robustness holds robustness tests in the manner of etcd's
// (tests/robustness there): a workload changes the under-storage while
// clients read through every front-end of Strata, every operation is
// recorded with its start and end on one monotonic clock, and a checker
// then judges the whole history against what Strata promises.
//
// TestReadIntegrity overwrites objects directly in MinIO (as "another
// client") while FUSE opens, FUSE handles held open, the S3 API and the Go
// client read them, and checks that every read is one whole version of its
// object, not older than the mount's metadata TTL allows, or the documented
// "changed since opened" error: never truncated, zero-padded, mixed or
// corrupt bytes. It is the Go form of ../shared/staleness (workload.py,
// content.py, check.py), whose content format and classes it follows.
//
// The FUSE readers are goroutines of the process that serves the mount,
// using plain open/fstat/read/pread (no mmap): a goroutine blocked in a FUSE
// syscall gives its P to the server's goroutines, which tried out reliable
// on 2 cores at 40k+ reads per 10 s.
//
// `go test` runs each configuration for 10 s; STRATA_ROBUSTNESS_DURATION
// (a Go duration, e.g. 5m) runs longer: `make robustness` does 3m each.
// It needs root and /dev/fuse (STRATA_ALLOW_SKIP=1 skips without) and the
// MinIO that scripts/install-tools.sh installs.
package robustness
