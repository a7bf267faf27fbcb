package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	gofuse "github.com/hanwen/go-fuse/v2/fuse"
)

// serveLoopback mounts go-fuse's loopback file system of args[0] at args[1]
// with the kernel options Strata uses, and serves it until SIGTERM.
func serveLoopback(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: bench loopback SOURCE MOUNTPOINT")
		return 2
	}
	root, err := fs.NewLoopbackRoot(args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ttl := 60 * time.Second
	srv, err := fs.Mount(args[1], root, &fs.Options{
		MountOptions: gofuse.MountOptions{DirectMountStrict: true, MaxWrite: 1 << 20, MaxReadAhead: 1 << 20,
			DisableXAttrs: true, MaxBackground: 64, Name: "loopback"},
		AttrTimeout: &ttl, EntryTimeout: &ttl,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	go func() {
		<-sig
		_ = srv.Unmount()
	}()
	srv.Wait()
	return 0
}
