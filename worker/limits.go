package worker

import (
	"fmt"
	"time"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
)

// Limits on what one request may ask of a worker. A request over a limit is
// refused with an InvalidArgument status that names the limit; nothing is
// cut silently.
const (
	// maxRecvMsgSize bounds one gRPC message the worker accepts
	// (grpc.MaxRecvMsgSize). The largest is a load job's CacheMetadata with a
	// listing of up to maxCachedListing entries; the coordinator's
	// maxMetadataMsg (its grpc.MaxCallSendMsgSize) is the same.
	maxRecvMsgSize = 64 << 20
	// maxSendMsgSize bounds one gRPC message the worker sends
	// (grpc.MaxSendMsgSize): the largest is a List batch, listBatch entries
	// of at most namespace.MaxPathLen bytes each, about 4.2 MiB.
	maxSendMsgSize = 16 << 20
	// maxConcurrentStreams bounds the RPCs in flight on one connection
	// (grpc.MaxConcurrentStreams); a client or coordinator multiplexes its
	// calls to a worker over one connection.
	maxConcurrentStreams = 1024
	// maxHeaderListSize bounds the header (metadata) of one RPC
	// (grpc.MaxHeaderListSize).
	maxHeaderListSize = 64 << 10

	// maxDataHeaderBytes bounds the request line and header of one request
	// to the data port (http.Server.MaxHeaderBytes): a data request's query
	// holds a path of at most namespace.MaxPathLen bytes, escaped.
	maxDataHeaderBytes = 64 << 10
	// dataReadHeaderTimeout bounds how long the data port waits for a
	// request's header (http.Server.ReadHeaderTimeout).
	dataReadHeaderTimeout = 10 * time.Second

	// maxLoadFiles bounds the files of one LoadFiles request (a load job
	// sends batches of 64).
	maxLoadFiles = 10_000
	// maxLoadBlocks bounds the blocks of one Load or Present request, and
	// of each file of a LoadFiles request (a load job sends at most 4).
	maxLoadBlocks = 4096
	// defaultLoadFilesConcurrency bounds the files of one LoadFiles request
	// that load at once when worker.ufs_concurrency is not set (it always is
	// in a validated configuration).
	defaultLoadFilesConcurrency = 32
	// maxInvalidatePaths bounds the paths of one Invalidate request.
	maxInvalidatePaths = 10_000
	// maxMetadataEntries bounds the stats plus the listing entries of one
	// CacheMetadata request.
	maxMetadataEntries = 2 * maxCachedListing
	// maxMetadataListings bounds the listings of one CacheMetadata request.
	maxMetadataListings = 10_000
)

// cleanRel validates a path relative to a mount root that came with a
// request and returns it clean ("a//b/" → "a/b"). It returns
// ufs.ErrInvalidPath for a path with "..", a NUL byte, invalid UTF-8, or
// over namespace.MaxPathLen bytes.
func cleanRel(p string) (string, error) {
	return namespace.CleanRel(p)
}

// strictRel is cleanRel for a path that is stored as given (the metadata a
// load job sends is keyed by its paths): it must be in clean form already.
func strictRel(p string) error {
	c, err := namespace.CleanRel(p)
	if err != nil {
		return err
	}
	if c != p {
		return fmt.Errorf("%w: %q is not in clean form (%q)", ufs.ErrInvalidPath, p, c)
	}
	return nil
}

// tooMany is the error of a request with more than limit items of a kind.
func tooMany(n, limit int, what string) error {
	return fmt.Errorf("%w: %d %s in one request; the limit is %d (send several requests)", rpcpb.ErrInvalidArgument, n, what, limit)
}

// checkFileInfo validates a file's metadata sent by a load job: a clean
// path (the root "" included) and a size that is not negative.
func checkFileInfo(p *rpcpb.FileInfo) error {
	if err := strictRel(p.GetPath()); err != nil {
		return err
	}
	if p.GetSize() < 0 {
		return fmt.Errorf("%w: %q has a negative size (%d)", rpcpb.ErrInvalidArgument, p.GetPath(), p.GetSize())
	}
	return nil
}

// checkListing validates a directory listing sent by a load job: a clean
// directory path and entries that are its children, each named by one clean
// element (no "/", ".", ".." or empty name).
func checkListing(l *rpcpb.Listing) error {
	dir := l.GetPath()
	if err := strictRel(dir); err != nil {
		return fmt.Errorf("listing: %w", err)
	}
	for _, e := range l.GetEntries() {
		if err := checkFileInfo(e); err != nil {
			return fmt.Errorf("listing of %q: %w", dir, err)
		}
		p := e.GetPath()
		if p == "" || parentRel(p) != dir {
			return fmt.Errorf("%w: listing of %q: the entry %q is not a child of the directory", rpcpb.ErrInvalidArgument, dir, p)
		}
	}
	return nil
}

// checkCacheMetadata validates a CacheMetadata request as a whole, before
// any of it is stored.
func checkCacheMetadata(req *rpcpb.CacheMetadataRequest) error {
	if len(req.GetListings()) > maxMetadataListings {
		return tooMany(len(req.GetListings()), maxMetadataListings, "listings")
	}
	n := len(req.GetStats())
	for _, l := range req.GetListings() {
		n += len(l.GetEntries())
	}
	if n > maxMetadataEntries {
		return tooMany(n, maxMetadataEntries, "stats and listing entries")
	}
	for _, p := range req.GetStats() {
		if err := checkFileInfo(p); err != nil {
			return fmt.Errorf("stat: %w", err)
		}
	}
	for _, l := range req.GetListings() {
		if err := checkListing(l); err != nil {
			return err
		}
	}
	return nil
}

// cleanNamespacePath validates an absolute namespace path that came with a
// request and returns it clean, as namespace.Clean does. Returns
// namespace.ErrInvalidPath.
func cleanNamespacePath(p string) (string, error) {
	return namespace.Clean(p)
}
