package worker

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// testRPC is a worker with no cluster view, cache or UFS: enough for the
// checks every request passes before it touches any of them.
func testRPC() *rpcService {
	return &rpcService{s: &Server{
		wcfg:   conf.Worker{BlockSize: 4 << 20, PageSize: 1 << 20, UFSConcurrency: 4},
		log:    slog.New(slog.DiscardHandler),
		meta:   newMetaCache(100, time.Minute),
		mounts: fixedMounts{},
		health: newBreaker(),
	}}
}

// badRel are paths relative to a mount root that no request may carry.
var badRel = map[string]string{
	"dot-dot":        "../x",
	"inner dot-dot":  "a/../b",
	"final dot-dot":  "a/..",
	"NUL":            "a/b\x00c",
	"invalid UTF-8":  "a/\xff",
	"4097-byte path": strings.Repeat("abcdefg/", 512) + "x",
}

func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("%s: got %v, want an InvalidArgument status", what, err)
	}
}

// listStream is a Worker_ListServer that collects what is sent.
type listStream struct {
	grpc.ServerStream
	sent []*rpcpb.ListResponse
}

func (l *listStream) Context() context.Context { return context.Background() }
func (l *listStream) Send(m *rpcpb.ListResponse) error {
	l.sent = append(l.sent, m)
	return nil
}

func TestRPCsRefuseBadPaths(t *testing.T) {
	r := testRPC()
	ctx := context.Background()
	info := &rpcpb.FileInfo{Size: 10, Etag: "e"}
	for name, p := range badRel {
		_, err := r.Stat(ctx, &rpcpb.StatRequest{MountId: "m", Path: p})
		wantInvalid(t, "Stat "+name, err)
		st := &listStream{}
		wantInvalid(t, "List "+name, r.List(&rpcpb.ListRequest{MountId: "m", Path: p}, st))
		if len(st.sent) != 0 {
			t.Errorf("List %s sent entries", name)
		}
		_, err = r.Invalidate(ctx, &rpcpb.InvalidateRequest{MountId: "m", Paths: []string{"ok", p}})
		wantInvalid(t, "Invalidate "+name, err)
		_, err = r.Load(ctx, &rpcpb.LoadRequest{MountId: "m", Path: p, Info: info, Blocks: []int64{0}})
		wantInvalid(t, "Load "+name, err)
		_, err = r.Present(ctx, &rpcpb.PresentRequest{MountId: "m", Path: p, Info: info, Blocks: []int64{0}})
		wantInvalid(t, "Present "+name, err)

		resp, err := r.LoadFiles(ctx, &rpcpb.LoadFilesRequest{Files: []*rpcpb.LoadRequest{
			{MountId: "m", Path: p, Info: info, Blocks: []int64{0, 1}},
		}})
		if err != nil {
			t.Fatalf("LoadFiles %s: %v (a bad file's error belongs in its results)", name, err)
		}
		if bl := resp.GetFiles()[0].GetBlocks(); len(bl) != 2 || bl[0].GetErrorReason() != "INVALID_UFS_PATH" || bl[1].GetError() == "" {
			t.Errorf("LoadFiles %s: block results %v, want INVALID_UFS_PATH for each", name, bl)
		}

		_, err = r.CacheMetadata(ctx, &rpcpb.CacheMetadataRequest{MountId: "m", Stats: []*rpcpb.FileInfo{{Path: p}}})
		wantInvalid(t, "CacheMetadata stat "+name, err)
		_, err = r.CacheMetadata(ctx, &rpcpb.CacheMetadataRequest{MountId: "m", Listings: []*rpcpb.Listing{{Path: p}}})
		wantInvalid(t, "CacheMetadata listing "+name, err)
		_, err = r.CacheMetadata(ctx, &rpcpb.CacheMetadataRequest{MountId: "m", Listings: []*rpcpb.Listing{
			{Path: "", Entries: []*rpcpb.FileInfo{{Path: "fine"}, {Path: p}}}}})
		wantInvalid(t, "CacheMetadata listing entry "+name, err)
	}
}

func TestFreePathRefusesBadPaths(t *testing.T) {
	r := testRPC()
	for _, p := range []string{"", "relative", "/a/../b", "/..", "/a/\x00", "/a/\xfe",
		"/" + strings.Repeat("a", namespace.MaxNamespacePathLen)} {
		_, err := r.FreePath(context.Background(), &rpcpb.FreePathRequest{Path: p})
		wantInvalid(t, "FreePath "+strings.ToValidUTF8(p[:min(len(p), 20)], "?"), err)
	}
}

// Invalidate cleans its paths: "a//b/" drops what "a/b" cached.
func TestInvalidateCleansPaths(t *testing.T) {
	r := testRPC()
	fi := ufs.FileInfo{Path: "a/b", Size: 1}
	r.s.meta.storeStats("m", []ufs.FileInfo{fi}, time.Minute)
	if _, err := r.Invalidate(context.Background(), &rpcpb.InvalidateRequest{MountId: "m", Paths: []string{"a//b/"}}); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.s.meta.getStaleStat("m", "a/b"); ok {
		t.Fatal(`Invalidate of "a//b/" left the stat of "a/b"`)
	}
	_, err := r.Invalidate(context.Background(), &rpcpb.InvalidateRequest{MountId: "m", Paths: make([]string, maxInvalidatePaths+1)})
	wantInvalid(t, "Invalidate of too many paths", err)
}

// The metadata a load job sends must have the shape the UFS gives it.
func TestCacheMetadataRefusesInconsistentEntries(t *testing.T) {
	r := testRPC()
	bad := map[string]*rpcpb.CacheMetadataRequest{
		"stat not in clean form":       {Stats: []*rpcpb.FileInfo{{Path: "a//b"}}},
		"stat with a leading slash":    {Stats: []*rpcpb.FileInfo{{Path: "/a"}}},
		"stat with a trailing slash":   {Stats: []*rpcpb.FileInfo{{Path: "a/"}}},
		"stat with a dot":              {Stats: []*rpcpb.FileInfo{{Path: "a/./b"}}},
		"stat with a negative size":    {Stats: []*rpcpb.FileInfo{{Path: "a", Size: -1}}},
		"listing not in clean form":    {Listings: []*rpcpb.Listing{{Path: "d/"}}},
		"entry of another directory":   {Listings: []*rpcpb.Listing{{Path: "d", Entries: []*rpcpb.FileInfo{{Path: "e/x"}}}}},
		"entry name with a slash":      {Listings: []*rpcpb.Listing{{Path: "d", Entries: []*rpcpb.FileInfo{{Path: "d/x/y"}}}}},
		"entry of the root with slash": {Listings: []*rpcpb.Listing{{Path: "", Entries: []*rpcpb.FileInfo{{Path: "x/y"}}}}},
		"entry named by its dir only":  {Listings: []*rpcpb.Listing{{Path: "d", Entries: []*rpcpb.FileInfo{{Path: "d"}}}}},
		"entry that is the root":       {Listings: []*rpcpb.Listing{{Path: "", Entries: []*rpcpb.FileInfo{{Path: ""}}}}},
		"entry named dot-dot":          {Listings: []*rpcpb.Listing{{Path: "d", Entries: []*rpcpb.FileInfo{{Path: "d/.."}}}}},
		"entry with an empty name":     {Listings: []*rpcpb.Listing{{Path: "d", Entries: []*rpcpb.FileInfo{{Path: "d/"}}}}},
		"entry with a NUL":             {Listings: []*rpcpb.Listing{{Path: "d", Entries: []*rpcpb.FileInfo{{Path: "d/a\x00"}}}}},
		"entry with a negative size":   {Listings: []*rpcpb.Listing{{Path: "d", Entries: []*rpcpb.FileInfo{{Path: "d/x", Size: -5}}}}},
		"too many listings":            {Listings: make([]*rpcpb.Listing, maxMetadataListings+1)},
		"too many entries":             {Stats: make([]*rpcpb.FileInfo, maxMetadataEntries+1)},
	}
	for name, req := range bad {
		req.MountId = "m"
		_, err := r.CacheMetadata(context.Background(), req)
		wantInvalid(t, name, err)
	}
	// What a load job sends passes: the root's stat, a listing of the root
	// and of a directory, names of 255 bytes.
	good := &rpcpb.CacheMetadataRequest{MountId: "m",
		Stats: []*rpcpb.FileInfo{{Path: "", IsDir: true}, {Path: "d", IsDir: true}, {Path: "d/x", Size: 3}},
		Listings: []*rpcpb.Listing{
			{Path: "", Entries: []*rpcpb.FileInfo{{Path: "d", IsDir: true}, {Path: "f"}}},
			{Path: "d", Entries: []*rpcpb.FileInfo{{Path: "d/x", Size: 3}, {Path: "d/" + strings.Repeat("n", 255)}, {Path: "d/..."}}},
		}}
	if err := checkCacheMetadata(good); err != nil {
		t.Fatalf("a well-formed request refused: %v", err)
	}
}

func TestLoadRefusesBadRequests(t *testing.T) {
	r := testRPC()
	ctx := context.Background()
	_, err := r.Load(ctx, &rpcpb.LoadRequest{MountId: "m", Path: "f", Info: &rpcpb.FileInfo{Size: -1}, Blocks: []int64{0}})
	wantInvalid(t, "Load of a negative size", err)
	_, err = r.Load(ctx, &rpcpb.LoadRequest{MountId: "m", Path: "f", Info: &rpcpb.FileInfo{Size: 1}, Blocks: make([]int64, maxLoadBlocks+1)})
	wantInvalid(t, "Load of too many blocks", err)
	_, err = r.Present(ctx, &rpcpb.PresentRequest{MountId: "m", Path: "f", Info: &rpcpb.FileInfo{Size: 1}, Blocks: make([]int64, maxLoadBlocks+1)})
	wantInvalid(t, "Present of too many blocks", err)
	_, err = r.LoadFiles(ctx, &rpcpb.LoadFilesRequest{Files: make([]*rpcpb.LoadRequest, maxLoadFiles+1)})
	wantInvalid(t, "LoadFiles of too many files", err)
	if err != nil && !strings.Contains(status.Convert(err).Message(), "limit is 10000") {
		t.Errorf("the error does not name the limit: %v", err)
	}
}

// A block number so large that block*blockSize overflows must not pass for
// a block of the file.
func TestBlockPagesRefusesHugeBlocks(t *testing.T) {
	s := testRPC().s
	ref := &fileRef{path: "f", info: ufs.FileInfo{Size: 10 << 20}}
	for _, b := range []int64{0, 1, 2} {
		if _, _, err := s.blockPages(ref, b); err != nil {
			t.Errorf("block %d: %v", b, err)
		}
	}
	first, last, _ := s.blockPages(ref, 2)
	if first != 8 || last != 9 {
		t.Errorf("block 2 = pages %d..%d, want 8..9", first, last)
	}
	for _, b := range []int64{-1, 3, 1 << 42, 1<<62 + 1, 1<<63 - 1} {
		if _, _, err := s.blockPages(ref, b); !errors.Is(err, rpcpb.ErrInvalidArgument) {
			t.Errorf("block %d of a 10 MiB file: %v, want ErrInvalidArgument", b, err)
		}
	}
	if _, _, err := s.blockPages(&fileRef{path: "e"}, 0); err == nil {
		t.Error("block 0 of an empty file accepted")
	}
}

// LoadFiles loads at most worker.ufs_concurrency files at once, and starts
// none after its context ends.
func TestLoadFilesBoundsConcurrency(t *testing.T) {
	s := testRPC().s
	files := make([]*rpcpb.LoadRequest, 40)
	for i := range files {
		files[i] = &rpcpb.LoadRequest{Path: "f", Blocks: []int64{0}}
	}
	var running, peak, calls atomic.Int64
	var mu sync.Mutex
	resp, err := s.loadFiles(context.Background(), files, func(ctx context.Context, _ *rpcpb.LoadRequest) (*rpcpb.LoadResponse, error) {
		calls.Add(1)
		n := running.Add(1)
		mu.Lock()
		peak.Store(max(peak.Load(), n))
		mu.Unlock()
		time.Sleep(2 * time.Millisecond)
		running.Add(-1)
		return &rpcpb.LoadResponse{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 40 || len(resp.GetFiles()) != 40 {
		t.Fatalf("%d calls, %d results; want 40", calls.Load(), len(resp.GetFiles()))
	}
	if p := peak.Load(); p > int64(s.wcfg.UFSConcurrency) || p < 2 {
		t.Fatalf("peak concurrency %d; want 2..%d", p, s.wcfg.UFSConcurrency)
	}

	ctx, cancel := context.WithCancel(context.Background())
	calls.Store(0)
	_, err = s.loadFiles(ctx, files, func(ctx context.Context, _ *rpcpb.LoadRequest) (*rpcpb.LoadResponse, error) {
		if calls.Add(1) == 1 {
			cancel()
		}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled LoadFiles: %v", err)
	}
	if n := calls.Load(); n > int64(s.wcfg.UFSConcurrency) {
		t.Fatalf("%d files started after the context ended; want at most %d", n, s.wcfg.UFSConcurrency)
	}
}
