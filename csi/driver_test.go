package csi

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := New(Options{Node: true, Name: "bad name"})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("New: %v, want ErrInvalid", err)
	}
	for _, want := range []string{"Client is required", "node ID", "state directory", "driver name"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q does not say %q", err, want)
		}
	}
	if _, err := New(Options{}); err == nil || !strings.Contains(err.Error(), "neither the node nor the controller") {
		t.Errorf("no service: %v", err)
	}
}

func TestListen(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "plugins", "csi.sock")
	for range 2 { // the second time, a stale socket file is there
		l, err := Listen("unix://" + sock)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if ul, ok := l.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false)
		}
		l.Close()
		if _, err := os.Stat(sock); err != nil {
			t.Fatalf("socket file: %v", err)
		}
	}
	for _, bad := range []string{"tcp://127.0.0.1:1", "unix://", "/no/scheme.sock"} {
		if _, err := Listen(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Listen(%q): %v, want ErrInvalid", bad, err)
		}
	}
}

func TestKeyedMutex(t *testing.T) {
	var k keyedMutex
	var mu sync.Mutex
	inside := map[string]int{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := []string{"a", "b"}[i%2]
			unlock := k.lock(key)
			mu.Lock()
			inside[key]++
			if inside[key] > 1 {
				t.Errorf("two holders of %s", key)
			}
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			inside[key]--
			mu.Unlock()
			unlock()
		}()
	}
	wg.Wait()
	if len(k.m) != 0 {
		t.Errorf("entries left: %d", len(k.m))
	}
}
