package fusee2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/tests/harness"
	"github.com/stratafs/strata/tests/testcluster"
	"golang.org/x/sys/unix"
)

// expectErrno fails unless err carries errno.
func expectErrno(t *testing.T, what string, err error, errno syscall.Errno) {
	t.Helper()
	if !errors.Is(err, errno) {
		t.Errorf("%s: err = %v, want %v (%d)", what, err, errno.Error(), int(errno))
	}
}

func TestWrites(t *testing.T) {
	old := randBytes(t, 3<<20+5)
	c, bucket := newS3Cluster(t, map[string][]byte{"old.bin": old, "keep/me": []byte("x")}, nil)
	srv := mount(t, c.Client, testConfig(t), "/")
	data := filepath.Join(srv.Dir(), "data")
	p := func(name string) string { return filepath.Join(data, name) }
	checkObject := func(key string, want []byte) {
		t.Helper()
		got, err := getObject(t, bucket, key)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("object %s: %d bytes (want %d), err %v", key, len(got), len(want), err)
		}
		back, err := os.ReadFile(p(key))
		if err != nil || !bytes.Equal(back, want) {
			t.Errorf("read back %s through the mount: %d bytes (want %d), err %v", key, len(back), len(want), err)
		}
	}

	t.Run("small create", func(t *testing.T) {
		if err := os.WriteFile(p("small.txt"), []byte("hello\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		checkObject("small.txt", []byte("hello\n"))
		if err := os.WriteFile(p("zero"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		checkObject("zero", []byte{})
	})

	t.Run("streamed create with cp and dd", func(t *testing.T) {
		big := randBytes(t, 21<<20+333) // beyond the in-memory head: streamed
		src := filepath.Join(t.TempDir(), "src.bin")
		if err := os.WriteFile(src, big, 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, "cp", src, p("cp.bin"))
		checkObject("cp.bin", big)
		run(t, "dd", "if="+src, "of="+p("dd.bin"), "bs=1M", "status=none")
		checkObject("dd.bin", big)
	})

	t.Run("random write to an existing file", func(t *testing.T) {
		f, err := os.OpenFile(p("old.bin"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(old)
		patch := randBytes(t, 5<<20+7) // extends the file
		if _, err := f.WriteAt(patch, 1000); err != nil {
			t.Fatal(err)
		}
		want = append(want[:1000], patch...)
		if _, err := f.WriteAt([]byte("HEAD"), 0); err != nil {
			t.Fatal(err)
		}
		copy(want, "HEAD")
		back := make([]byte, 4)
		if _, err := f.ReadAt(back, 0); err != nil || string(back) != "HEAD" {
			t.Errorf("read own write: %q, %v", back, err)
		}
		// fsync uploads: the object is complete before close.
		if err := f.Sync(); err != nil {
			t.Fatalf("fsync: %v", err)
		}
		if got := mustGetObject(t, bucket, "old.bin"); !bytes.Equal(got, want) {
			t.Errorf("after fsync the object has %d bytes, want %d", len(got), len(want))
		}
		if _, err := f.WriteAt([]byte("TAIL"), int64(len(want))); err != nil {
			t.Fatal(err)
		}
		want = append(want, "TAIL"...)
		if err := f.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		checkObject("old.bin", want)
	})

	t.Run("append", func(t *testing.T) {
		if err := os.WriteFile(p("log.txt"), []byte("line 1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, line := range []string{"line 2\n", "line 3\n"} {
			f, err := os.OpenFile(p("log.txt"), os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(line); err != nil {
				t.Fatal(err)
			}
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		}
		checkObject("log.txt", []byte("line 1\nline 2\nline 3\n"))
	})

	t.Run("truncate", func(t *testing.T) {
		content := randBytes(t, 10<<20)
		if err := os.WriteFile(p("trunc.bin"), content, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p("trunc.bin"), 100); err != nil {
			t.Fatal(err)
		}
		checkObject("trunc.bin", content[:100])
		if err := os.Truncate(p("trunc.bin"), 300); err != nil {
			t.Fatal(err)
		}
		checkObject("trunc.bin", append(slices.Clone(content[:100]), make([]byte, 200)...))
		// O_TRUNC replaces the content when the file is closed.
		if err := os.WriteFile(p("trunc.bin"), []byte("new"), 0o644); err != nil {
			t.Fatal(err)
		}
		checkObject("trunc.bin", []byte("new"))
		f, err := os.OpenFile(p("trunc.bin"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(1); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		checkObject("trunc.bin", []byte("n"))
	})

	t.Run("out-of-order write while streaming", func(t *testing.T) {
		f, err := os.OpenFile(p("stream.bin"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		content := randBytes(t, 9<<20)
		if _, err := f.Write(content); err != nil {
			t.Fatal(err)
		}
		_, err = f.WriteAt([]byte("x"), 0)
		expectErrno(t, "write before the end of a streamed file", err, syscall.ENOTSUP)
		if err := f.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		checkObject("stream.bin", content)
	})

	t.Run("O_RDWR create stages beyond the head", func(t *testing.T) {
		f, err := os.OpenFile(p("rdwr.bin"), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		content := randBytes(t, 12<<20)
		if _, err := f.Write(content); err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte("patched"), 1); err != nil {
			t.Fatal(err)
		}
		copy(content[1:], "patched")
		back := make([]byte, len(content))
		if _, err := f.ReadAt(back, 0); err != nil || !bytes.Equal(back, content) {
			t.Errorf("read back through the same descriptor: %v", err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		checkObject("rdwr.bin", content)
	})

	t.Run("directories, rename, unlink", func(t *testing.T) {
		if err := os.Mkdir(p("newdir"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p("newdir/f"), []byte("f"), 0o644); err != nil {
			t.Fatal(err)
		}
		expectErrno(t, "rmdir of a non-empty directory", syscall.Rmdir(p("newdir")), syscall.ENOTEMPTY)
		expectErrno(t, "rename of a directory", os.Rename(p("newdir"), p("moved")), syscall.EXDEV)
		if err := os.Rename(p("newdir/f"), p("renamed")); err != nil {
			t.Fatalf("rename a file: %v", err)
		}
		checkObject("renamed", []byte("f"))
		if _, err := getObject(t, bucket, "newdir/f"); err == nil {
			t.Errorf("newdir/f still exists after the rename")
		}
		if err := os.Remove(p("newdir")); err != nil {
			t.Errorf("rmdir an empty directory: %v", err)
		}
		if err := os.Remove(p("renamed")); err != nil {
			t.Fatal(err)
		}
		if _, err := getObject(t, bucket, "renamed"); err == nil {
			t.Errorf("renamed still exists after unlink")
		}
		if _, err := os.Stat(p("renamed")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat after unlink: %v", err)
		}
		// `mv` of a directory falls back to copy and delete on EXDEV.
		run(t, "mv", p("keep"), p("kept"))
		checkObject("kept/me", []byte("x"))
		// Nothing can be created in the virtual directory above the mount.
		expectErrno(t, "create in a virtual directory", os.WriteFile(filepath.Join(srv.Dir(), "x"), nil, 0o644), syscall.EROFS)
	})

	t.Run("unsupported operations", func(t *testing.T) {
		if err := os.WriteFile(p("target"), []byte("t"), 0o644); err != nil {
			t.Fatal(err)
		}
		expectErrno(t, "link", os.Link(p("target"), p("hard")), syscall.ENOTSUP)
		expectErrno(t, "symlink", os.Symlink("target", p("sym")), syscall.ENOTSUP)
		expectErrno(t, "mkfifo", syscall.Mkfifo(p("fifo"), 0o644), syscall.ENOTSUP)
		expectErrno(t, "chmod to another mode", os.Chmod(p("target"), 0o600), syscall.EPERM)
		if err := os.Chmod(p("target"), 0o644); err != nil {
			t.Errorf("chmod to the mode shown: %v", err)
		}
		// Times are accepted and have no effect (cp -p, tar, copy2 set them).
		if err := os.Chtimes(p("target"), time.Unix(1e9, 0), time.Unix(1e9, 0)); err != nil {
			t.Errorf("utimes: %v", err)
		}
		run(t, "touch", p("target"))
		expectErrno(t, "setxattr", unix.Setxattr(p("target"), "user.k", []byte("v"), 0), syscall.ENOTSUP)
		f, err := os.Open(p("target"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		expectErrno(t, "flock", syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB), syscall.ENOLCK)
		expectErrno(t, "fcntl lock", syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &syscall.Flock_t{Type: syscall.F_RDLCK}), syscall.ENOLCK)
	})
}

// TestWriteBuffersReleased checks that the memory of files written is
// given back once they are closed.
func TestWriteBuffersReleased(t *testing.T) {
	c, bucket := newS3Cluster(t, map[string][]byte{"old": []byte("old")}, nil)
	srv := mount(t, c.Client, testConfig(t), "/data")
	p := func(name string) string { return filepath.Join(srv.Dir(), name) }
	for i, size := range []int{0, 100, 3 << 20, 9 << 20} {
		if err := os.WriteFile(p(fmt.Sprintf("f%d", i)), randBytes(t, size), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.OpenFile(p("rw"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(randBytes(t, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(); st.WriteBufferBytes != 1<<20 {
		t.Errorf("while a 1 MiB file is open for writing: %d bytes buffered", st.WriteBufferBytes)
	}
	if err := f.Truncate(10); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p("old"), 1); err != nil {
		t.Fatal(err)
	}
	if st := srv.Stats(); st.WriteBufferBytes != 0 {
		t.Errorf("after every file was closed: %d bytes buffered", st.WriteBufferBytes)
	}
	if got := mustGetObject(t, bucket, "rw"); len(got) != 10 {
		t.Errorf("rw has %d bytes, want 10", len(got))
	}
}

func TestReadOnlyMount(t *testing.T) {
	c := testcluster.Start(t, testcluster.Options{})
	bucket := minio.NewBucket(t, "readonly")
	putObjects(t, bucket, map[string][]byte{"a": []byte("a")})
	c.MustMount(t, "/ro", "s3://"+bucket, minio.S3Options(), func(m *namespace.Mount) { m.ReadOnly = true })
	srv := mount(t, c.Client, testConfig(t), "/ro")
	a := filepath.Join(srv.Dir(), "a")
	if b, err := os.ReadFile(a); err != nil || string(b) != "a" {
		t.Fatalf("read: %q, %v", b, err)
	}
	_, err := os.OpenFile(a, os.O_WRONLY, 0)
	expectErrno(t, "open for write", err, syscall.EROFS)
	expectErrno(t, "create", os.WriteFile(filepath.Join(srv.Dir(), "b"), nil, 0o644), syscall.EROFS)
	expectErrno(t, "mkdir", os.Mkdir(filepath.Join(srv.Dir(), "d"), 0o755), syscall.EROFS)
	expectErrno(t, "unlink", os.Remove(a), syscall.EROFS)
	expectErrno(t, "truncate", os.Truncate(a, 0), syscall.EROFS)
	st, err := os.Stat(a)
	if err != nil || st.Mode().Perm()&0o222 != 0 {
		t.Errorf("mode of a file of a read-only mount: %v, %v", st.Mode(), err)
	}
	if err := unix.Access(a, unix.W_OK); !errors.Is(err, syscall.EROFS) {
		t.Errorf("access(W_OK) = %v, want EROFS", err)
	}
}

// TestUploadErrorsReachTheApplication stops MinIO under open files: fsync
// and close must fail, not pretend.
func TestUploadErrorsReachTheApplication(t *testing.T) {
	m := harness.StartMinIO(t)
	c := testcluster.Start(t, testcluster.Options{})
	bucket := m.NewBucket(t, "uploaderr")
	opts := m.S3Options()
	opts["s3.max_attempts"] = "1"
	c.MustMount(t, "/data", "s3://"+bucket, opts)
	srv := mount(t, c.Client, testConfig(t), "/data")

	small, err := os.Create(filepath.Join(srv.Dir(), "small"))
	if err != nil {
		t.Fatal(err)
	}
	staged, err := os.OpenFile(filepath.Join(srv.Dir(), "staged"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	streamed, err := os.Create(filepath.Join(srv.Dir(), "streamed"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := small.WriteString("data"); err != nil {
		t.Fatal(err)
	}
	if _, err := staged.Write(randBytes(t, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if _, err := streamed.Write(randBytes(t, 12<<20)); err != nil { // streaming has begun
		t.Fatal(err)
	}
	m.Stop(10 * time.Second)

	if err := staged.Sync(); err == nil {
		t.Errorf("fsync succeeded with the store down")
	}
	if err := staged.Close(); err == nil {
		t.Errorf("close of a staged file succeeded with the store down")
	}
	if err := small.Close(); err == nil {
		t.Errorf("close of a small file succeeded with the store down")
	}
	// The stream fails at a write or at close; close reports it either way.
	_, werr := streamed.Write(randBytes(t, 4<<20))
	if cerr := streamed.Close(); cerr == nil {
		t.Errorf("close of a streamed file succeeded with the store down (write: %v)", werr)
	}
	if st := srv.Stats(); st.UploadErrors < 3 {
		t.Errorf("stats = %+v: want an upload error counted per file", st)
	}

}
