package robustness

import (
	"sync"
	"time"
)

// The history: every PUT and every read, with start and end on one clock
// (the monotonic time since the history began). Reads are decoded when they
// are recorded; their bytes are not kept.

// Read paths.
const (
	pathFresh  = "fuse_fresh" // open + fstat + read to EOF + close
	pathHeld   = "fuse_held"  // fstat + pread to EOF on a handle held open
	pathS3     = "s3_get"     // GetObject on Strata's S3 API
	pathClient = "client"     // client.Client.Open + read to EOF
)

var paths = []string{pathFresh, pathHeld, pathS3, pathClient}

// errChanged is the error name of a read that failed with the front-end's
// form of ufs.ErrChanged ("the object changed since it was opened; open it
// again"): ESTALE from FUSE, ufs.ErrChanged from the Go client,
// OperationAborted from the S3 API. It is allowed (neither passed nor
// failed), as check.py allows ESTALE.
const errChanged = "ESTALE"

// writeRec is one PUT straight into MinIO.
type writeRec struct {
	key, version, size int
	start, ack         time.Duration // ack: when MinIO answered (valid when ok)
	ok                 bool
	err                string
}

// readRec is one read.
type readRec struct {
	path       string
	key        int
	start, end time.Duration
	// handle and open identify a held handle (handle > 0): its id and when
	// its open began.
	handle int
	open   time.Duration
	// err is the error's name ("" when the read returned data); detail
	// says more.
	err, detail string
	// stSize is the size fstat gave for FUSE reads, -1 otherwise.
	stSize int64
	dec    decoded
}

// history records a run. Its methods are safe for concurrent use.
type history struct {
	t0     time.Time
	run    uint32
	nkeys  int
	mu     sync.Mutex
	writes []writeRec
	reads  []readRec
}

func newHistory(run uint32, nkeys int) *history {
	return &history{t0: time.Now(), run: run, nkeys: nkeys}
}

// now is the history's clock: monotonic (time.Since uses the monotonic
// reading), shared by writers and readers of this process.
func (h *history) now() time.Duration { return time.Since(h.t0) }

func (h *history) addWrite(w writeRec) {
	h.mu.Lock()
	h.writes = append(h.writes, w)
	h.mu.Unlock()
}

func (h *history) addRead(r readRec) {
	h.mu.Lock()
	h.reads = append(h.reads, r)
	h.mu.Unlock()
}

// snapshot returns copies of the records so far.
func (h *history) snapshot() ([]writeRec, []readRec) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]writeRec(nil), h.writes...), append([]readRec(nil), h.reads...)
}

// counts returns the number of writes and of reads per path so far.
func (h *history) counts() (int, map[string]int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := map[string]int{}
	for _, r := range h.reads {
		m[r.path]++
	}
	return len(h.writes), m
}
