package worker

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stratafs/strata/ufs"
)

func TestMetaCacheKeepsExpiredEntriesForStaleIfError(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newMetaCache(100, time.Minute)
	c.now = func() time.Time { return now }
	a := ufs.FileInfo{Path: "d/a", Size: 3, ETag: "x"}
	c.storeStats("m", []ufs.FileInfo{a, {Path: "d", IsDir: true}}, time.Second)
	c.storeList("m", "d", []ufs.FileInfo{a}, 0) // a zero TTL still keeps it, already expired
	if _, ok := c.getStat("m", "d/a"); !ok {
		t.Fatal("fresh loaded stat not served")
	}
	if _, ok := c.getList("m", "d"); ok {
		t.Fatal("a listing stored with a zero TTL served as fresh")
	}
	now = now.Add(time.Hour)
	if _, ok := c.getStat("m", "d/a"); ok {
		t.Fatal("expired stat served as fresh")
	}
	if fi, ok := c.getStaleStat("m", "d/a"); !ok || fi != a {
		t.Fatalf("stale stat: %+v %v", fi, ok)
	}
	if l, ok := c.getStaleList("m", "d"); !ok || len(l) != 1 {
		t.Fatalf("stale listing: %v %v", l, ok)
	}
	c.putStat("m", "gone", statEntry{notFound: true}, time.Second, c.generation("m"))
	if _, ok := c.getStaleStat("m", "gone"); ok {
		t.Fatal("a 'not found' entry served as a stale stat")
	}
	c.invalidate("m", []string{"d/a"})
	if _, ok := c.getStaleStat("m", "d/a"); ok {
		t.Fatal("an invalidated stat is still served when stale")
	}
	if _, ok := c.getStaleList("m", "d"); ok {
		t.Fatal("the parent listing of an invalidated path is still served when stale")
	}
}

func TestBreakerLetsOneProbeThroughWhileDown(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	b := newBreaker()
	b.now = func() time.Time { return now }
	if b.down("m") || !b.probe("m") || !b.probe("m") {
		t.Fatal("a mount with no failure is not up")
	}
	b.done("m", errors.New("connection refused"), true)
	if !b.down("m") || b.down("other") {
		t.Fatal("an unreachable error did not open the breaker of its mount only")
	}
	if b.probe("m") {
		t.Fatal("a probe was let through right after the failure")
	}
	if err := b.unavailable("m", "/ds/x"); !errors.Is(err, ufs.ErrUnavailable) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("unavailable: %v", err)
	}
	now = now.Add(probeInterval)
	if !b.probe("m") || b.probe("m") {
		t.Fatal("want exactly one probe per interval")
	}
	b.release("m") // the prober gave up: no news
	if !b.down("m") {
		t.Fatal("a released probe closed the breaker")
	}
	now = now.Add(probeInterval)
	if !b.probe("m") {
		t.Fatal("no probe after the next interval")
	}
	b.done("m", errors.New("not found"), false) // an answer: the UFS is back
	if b.down("m") || !b.probe("m") {
		t.Fatal("an answer did not close the breaker")
	}
}

func TestMetaCacheAnswersChildrenFromAListing(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newMetaCache(100, time.Minute)
	c.now = func() time.Time { return now }
	a := ufs.FileInfo{Path: "d/a", Size: 3, ETag: "x"}
	b := ufs.FileInfo{Path: "d/b", Size: 4, ETag: "y"}
	if _, _, ok := c.lookupChild("m", "d/a", 10); ok {
		t.Fatal("answered without a listing")
	}
	c.putList("m", "d", []ufs.FileInfo{a, b}, time.Minute, c.generation("m"))
	if fi, found, ok := c.lookupChild("m", "d/b", 10); !ok || !found || fi != b {
		t.Fatalf("child of a fresh listing: %+v %v %v", fi, found, ok)
	}
	if _, found, ok := c.lookupChild("m", "d/c", 10); !ok || found {
		t.Fatalf("missing child of a just-read listing: found %v ok %v, want a negative answer", found, ok)
	}
	if _, _, ok := c.lookupChild("m", "d/a", 1); ok {
		t.Fatal("answered from a listing larger than the limit")
	}
	// A missing name is answered "not found" from a listing only while
	// such an answer could have been cached (negativeTTLCap): a file created
	// behind Strata's back then shows up.
	now = now.Add(negativeTTLCap)
	if _, _, ok := c.lookupChild("m", "d/c", 10); ok {
		t.Fatal("negative answer from a listing older than negativeTTLCap")
	}
	if _, found, ok := c.lookupChild("m", "d/a", 10); !ok || !found {
		t.Fatal("positive answer from a fresh listing refused")
	}
	now = now.Add(time.Minute)
	if _, _, ok := c.lookupChild("m", "d/a", 10); ok {
		t.Fatal("answered from an expired listing")
	}
	c.markBig("m", "e", time.Minute)
	if !c.isBig("m", "e") || c.isBig("m", "d") {
		t.Fatal("isBig")
	}
	now = now.Add(2 * time.Minute)
	if c.isBig("m", "e") {
		t.Fatal("isBig after its TTL")
	}
}

// A stat or listing read from the UFS while a write invalidated its mount
// may predate the write: it is not cached.
func TestMetaCacheDropsWhatWasReadAcrossAnInvalidation(t *testing.T) {
	c := newMetaCache(100, time.Minute)
	gen := c.generation("m")
	c.invalidate("m", []string{"d/new"}) // a write lands while the listing is read
	c.putList("m", "d", []ufs.FileInfo{{Path: "d/old"}}, time.Minute, gen)
	c.putStat("m", "d/x", statEntry{notFound: true}, time.Minute, gen)
	if _, ok := c.getList("m", "d"); ok {
		t.Fatal("a listing read across an invalidation was cached")
	}
	if _, ok := c.getStat("m", "d/x"); ok {
		t.Fatal("a stat read across an invalidation was cached")
	}
	c.putList("m", "d", []ufs.FileInfo{{Path: "d/old"}, {Path: "d/new"}}, time.Minute, c.generation("m"))
	if l, ok := c.getList("m", "d"); !ok || len(l) != 2 {
		t.Fatalf("a listing read after the invalidation: %v %v", l, ok)
	}
	// Other mounts are not affected.
	if c.generation("other") != 0 {
		t.Fatal("invalidating one mount changed another's generation")
	}
}
