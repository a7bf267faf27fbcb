package worker

import (
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
	c.putStat("m", "gone", statEntry{notFound: true}, time.Second)
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

func TestMetaCacheRemembersAnUnreachableUFS(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newMetaCache(100, time.Minute)
	c.now = func() time.Time { return now }
	if c.isDown("m") {
		t.Fatal("down before any failure")
	}
	c.markDown("m")
	if !c.isDown("m") || c.isDown("other") {
		t.Fatal("markDown")
	}
	now = now.Add(downHold)
	if c.isDown("m") {
		t.Fatal("still down after downHold")
	}
}
