package tier

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
)

// storeFactory opens an empty store with room for about capacity bytes of pages
// of pageSize bytes.
type storeFactory func(t *testing.T, pageSize, capacity int64) medium

func memFactory(t *testing.T, pageSize, capacity int64) medium {
	s := NewMemStore(capacity, pageSize, true)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func diskFactory(t *testing.T, pageSize, capacity int64) medium {
	s, rec, err := OpenDiskStore(DiskOptions{Dir: t.TempDir(), Quota: capacity, PageSize: pageSize, MaxOpenFiles: 4, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if len(rec) != 0 {
		t.Fatalf("fresh directory recovered %d files", len(rec))
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestStoreConformance runs one suite against every medium.
func TestStoreConformance(t *testing.T) {
	for name, open := range map[string]storeFactory{"mem": memFactory, "disk": diskFactory} {
		t.Run(name, func(t *testing.T) { storeSuite(t, open) })
	}
}

func storeSuite(t *testing.T, open storeFactory) {
	const ps = 4096
	ctx := context.Background()
	get := func(t *testing.T, s Store, key PageKey, want []byte) {
		t.Helper()
		h, err := s.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get %s: %v", key, err)
		}
		defer h.Close()
		if !bytes.Equal(h.Bytes(), want) {
			t.Fatalf("Get %s: %d bytes, not the ones put (want %d)", key, len(h.Bytes()), len(want))
		}
	}

	t.Run("PutGetDelete", func(t *testing.T) {
		s := open(t, ps, 1<<20)
		id := fid(1)
		size := int64(2*ps + 123) // short last page
		meta := FileMeta{Path: "/a/b", Size: size}
		for i := int64(0); i < 3; i++ {
			if err := s.Put(ctx, PageKey{id, i}, meta, content(id, i, int(pageLen(size, ps, i)))); err != nil {
				t.Fatalf("Put %d: %v", i, err)
			}
		}
		for i := int64(0); i < 3; i++ {
			get(t, s, PageKey{id, i}, content(id, i, int(pageLen(size, ps, i))))
		}
		if h, err := s.Get(ctx, PageKey{id, 2}); err != nil || len(h.Bytes()) != 123 {
			t.Fatalf("short last page: %v", err)
		} else {
			_ = h.Close()
		}
		if _, err := s.Get(ctx, PageKey{fid(2), 0}); !errors.Is(err, ErrNotCached) {
			t.Fatalf("Get of an unknown file: %v", err)
		}
		// A second Put of the same key is a no-op.
		if err := s.Put(ctx, PageKey{id, 0}, meta, content(id, 0, ps)); err != nil {
			t.Fatal(err)
		}
		if u := s.Usage(); u.Pages != 3 || u.Files != 1 {
			t.Fatalf("usage after a duplicate put: %+v", u)
		}
		if err := s.Delete(PageKey{id, 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, PageKey{id, 1}); !errors.Is(err, ErrNotCached) {
			t.Fatalf("Get after Delete: %v", err)
		}
		if err := s.Delete(PageKey{id, 1}); !errors.Is(err, ErrNotCached) {
			t.Fatalf("second Delete: %v", err)
		}
		get(t, s, PageKey{id, 0}, content(id, 0, ps))
		get(t, s, PageKey{id, 2}, content(id, 2, 123))
	})

	t.Run("InvalidArguments", func(t *testing.T) {
		s := open(t, ps, 1<<20)
		meta := FileMeta{Path: "/x", Size: 10000}
		cases := []struct {
			key  PageKey
			meta FileMeta
			n    int
		}{
			{PageKey{"XYZ", 0}, meta, ps},                                // bad id
			{PageKey{"0123456789ABCDEF", 0}, meta, ps},                   // upper case
			{PageKey{"../../../etc/passwd0", 0}, meta, ps},               // traversal
			{PageKey{fid(1), -1}, meta, ps},                              // negative index
			{PageKey{fid(1), 3}, meta, ps},                               // beyond the end
			{PageKey{fid(1), 2}, meta, ps},                               // last page too long
			{PageKey{fid(1), 0}, meta, ps - 1},                           // full page too short
			{PageKey{fid(1), 0}, FileMeta{Path: "rel", Size: 10000}, ps}, // relative path
			{PageKey{fid(1), 0}, FileMeta{Path: "/x", Size: 0}, 0},       // empty file
		}
		for _, c := range cases {
			if err := s.Put(ctx, c.key, c.meta, make([]byte, c.n)); !errors.Is(err, ErrInvalid) {
				t.Errorf("Put(%v, %+v, %d bytes) = %v, want ErrInvalid", c.key, c.meta, c.n, err)
			}
		}
		if u := s.Usage(); u.Pages != 0 || u.Used != 0 {
			t.Fatalf("usage after rejected puts: %+v", u)
		}
	})

	t.Run("HandleOutlivesDelete", func(t *testing.T) {
		s := open(t, ps, 1<<20)
		id := fid(3)
		meta := FileMeta{Path: "/h", Size: 4 * ps}
		for i := int64(0); i < 4; i++ {
			if err := s.Put(ctx, PageKey{id, i}, meta, content(id, i, ps)); err != nil {
				t.Fatal(err)
			}
		}
		h, err := s.Get(ctx, PageKey{id, 1})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // delete concurrently, then refill the store with other data
			defer wg.Done()
			if err := s.Delete(PageKey{id, 1}); err != nil {
				t.Error(err)
			}
			for i := int64(0); i < 4; i++ {
				o := fid(100)
				_ = s.Put(ctx, PageKey{o, i}, FileMeta{Path: "/o", Size: 4 * ps}, bytes.Repeat([]byte{0xee}, ps))
			}
		}()
		wg.Wait()
		if !bytes.Equal(h.Bytes(), content(id, 1, ps)) {
			t.Fatal("a held page changed under its reader")
		}
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
		_ = h.Close() // idempotent
		if _, err := s.Get(ctx, PageKey{id, 1}); !errors.Is(err, ErrNotCached) {
			t.Fatalf("deleted page still served: %v", err)
		}
	})

	t.Run("UsageAccounting", func(t *testing.T) {
		s := open(t, ps, 1<<20)
		if u := s.Usage(); u.Used != 0 || u.Pages != 0 || u.Capacity != 1<<20 {
			t.Fatalf("empty usage %+v", u)
		}
		var sum int64
		for f := range 3 {
			id := fid(10 + f)
			size := int64(3*ps + 10)
			for i := int64(0); i < 4; i++ {
				n := pageLen(size, ps, i)
				key := PageKey{id, i}
				sum += s.need(key, FileMeta{Path: "/u", Size: size}, int(n))
				if err := s.Put(ctx, key, FileMeta{Path: "/u", Size: size}, content(id, i, int(n))); err != nil {
					t.Fatal(err)
				}
				if s.need(key, FileMeta{Path: "/u", Size: size}, int(n)) != 0 {
					t.Fatal("need of a present page is not 0")
				}
			}
		}
		u := s.Usage()
		if u.Pages != 12 || u.Files != 3 || u.Used != sum {
			t.Fatalf("usage %+v, want 12 pages, 3 files, %d bytes used", u, sum)
		}
		if u.Used < 9*ps+3*10 {
			t.Fatalf("used %d is less than the page bytes", u.Used)
		}
		for f := range 3 {
			for i := int64(0); i < 4; i++ {
				if err := s.Delete(PageKey{fid(10 + f), i}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if u := s.Usage(); u.Used != 0 || u.Pages != 0 || u.Files != 0 {
			t.Fatalf("usage after deleting everything: %+v", u)
		}
	})

	t.Run("Full", func(t *testing.T) {
		s := open(t, ps, 8*ps)
		var err error
		n := 0
		for i := int64(0); i < 16 && err == nil; i++ {
			err = s.Put(ctx, PageKey{fid(20), i}, FileMeta{Path: "/f", Size: 16 * ps}, content(fid(20), i, ps))
			if err == nil {
				n++
			}
		}
		if !errors.Is(err, ErrNoSpace) {
			t.Fatalf("Put into a full store: %v", err)
		}
		if n == 0 || s.Usage().Used > 8*ps {
			t.Fatalf("%d pages stored, usage %+v", n, s.Usage())
		}
	})

	t.Run("RemoveFile", func(t *testing.T) {
		s := open(t, ps, 1<<20)
		id := fid(30)
		for i := int64(0); i < 5; i++ {
			if err := s.Put(ctx, PageKey{id, i}, FileMeta{Path: "/r", Size: 5 * ps}, content(id, i, ps)); err != nil {
				t.Fatal(err)
			}
		}
		if got := s.removeFile(id); len(got) != 5 {
			t.Fatalf("removeFile returned %v", got)
		}
		if s.hasFile(id) || s.Usage().Used != 0 {
			t.Fatalf("file still there: %+v", s.Usage())
		}
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := open(t, ps, 1<<22)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 200 {
					id := fid(40 + j%5) // shared files: puts of the same keys race
					i := int64((j*7 + w) % 32)
					key := PageKey{id, i}
					meta := FileMeta{Path: "/c/" + id, Size: 32 * ps}
					if err := s.Put(ctx, key, meta, content(id, i, ps)); err != nil && !errors.Is(err, ErrNoSpace) {
						t.Error(err)
						return
					}
					if h, err := s.Get(ctx, key); err == nil {
						if !bytes.Equal(h.Bytes(), content(id, i, ps)) {
							t.Errorf("%s: wrong bytes", key)
						}
						_ = h.Close()
					} else if !errors.Is(err, ErrNotCached) {
						t.Error(err)
					}
					if j%9 == 0 {
						_ = s.Delete(key)
					}
				}
			}()
		}
		wg.Wait()
		u := s.Usage()
		var pages int64
		for f := range 5 {
			for i := int64(0); i < 32; i++ {
				if s.has(PageKey{fid(40 + f), i}) {
					pages++
				}
			}
		}
		if u.Pages != pages {
			t.Fatalf("usage says %d pages, %d are there", u.Pages, pages)
		}
	})

	t.Run("Closed", func(t *testing.T) {
		s := open(t, ps, 1<<20)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Get(ctx, PageKey{fid(1), 0}); !errors.Is(err, ErrClosed) {
			t.Fatalf("Get after Close: %v", err)
		}
		if err := s.Put(ctx, PageKey{fid(1), 0}, FileMeta{Path: "/c", Size: ps}, make([]byte, ps)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Put after Close: %v", err)
		}
	})
}

func TestMemStoreChecksum(t *testing.T) {
	s := NewMemStore(1<<20, 4096, true)
	ctx := context.Background()
	id := fid(1)
	if err := s.Put(ctx, PageKey{id, 0}, FileMeta{Path: "/m", Size: 4096}, content(id, 0, 4096)); err != nil {
		t.Fatal(err)
	}
	h, err := s.Get(ctx, PageKey{id, 0})
	if err != nil {
		t.Fatal(err)
	}
	h.Bytes()[100] ^= 0xff // what a stray write or a bad DIMM would do
	_ = h.Close()
	_, err = s.Get(ctx, PageKey{id, 0})
	if !errors.Is(err, ErrNotCached) || !errors.Is(err, ErrChecksum) {
		t.Fatalf("Get of a corrupted page: %v", err)
	}
	if s.has(PageKey{id, 0}) {
		t.Fatal("corrupted page kept")
	}
}

// TestMemStoreDuplicatePutRacingDelete: a Put of a page that another Put
// stored is a no-op even when a Delete empties the slot right after; it was
// once misreported as "file size differs" (the slot was read after the shard
// lock was released).
func TestMemStoreDuplicatePutRacingDelete(t *testing.T) {
	const ps = 4096
	s := NewMemStore(1<<20, ps, false)
	defer s.Close()
	ctx := context.Background()
	id := fid(7)
	key := PageKey{id, 0}
	meta := FileMeta{Path: "/dup", Size: ps}
	data := content(id, 0, ps)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad sync.Once
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := s.Put(ctx, key, meta, data); err != nil {
					bad.Do(func() { t.Errorf("duplicate Put racing a Delete: %v", err) })
					return
				}
			}
		}()
	}
	for range 20_000 {
		_ = s.Delete(key)
	}
	close(stop)
	wg.Wait()
}
