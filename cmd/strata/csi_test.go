package main

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stratafs/strata/conf"
)

func TestCSIServices(t *testing.T) {
	for mode, want := range map[string][2]bool{"node": {true, false}, "controller": {false, true}, "all": {true, true}} {
		n, c, err := csiServices(mode)
		if err != nil || n != want[0] || c != want[1] {
			t.Errorf("%s: %v %v %v", mode, n, c, err)
		}
	}
	if _, _, err := csiServices("both"); !errors.Is(err, conf.ErrInvalid) {
		t.Errorf("bad mode: %v", err)
	}
}

func TestCSICommandFlags(t *testing.T) {
	t.Setenv("NODE_NAME", "gpu-node-7")
	t.Setenv("CSI_ENDPOINT", "unix:///plugin/csi.sock")
	root := newRootCmd()
	cmd, _, err := root.Find([]string{"csi"})
	if err != nil {
		t.Fatal(err)
	}
	for flag, want := range map[string]string{"node-id": "gpu-node-7", "endpoint": "unix:///plugin/csi.sock", "mode": "all", "mount-root": "/k8s"} {
		if got := cmd.Flags().Lookup(flag).DefValue; got != want {
			t.Errorf("--%s defaults to %q, want %q", flag, got, want)
		}
	}
	root.SetArgs([]string{"csi", "--mode", "both", "--health-listen", ""})
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "--mode") {
		t.Errorf("strata csi --mode both: %v", err)
	}
}

func TestSwitchHandler(t *testing.T) {
	var s switchHandler
	s.set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "starting") }))
	stop, err := serveHealth("127.0.0.1:0", &s, newLogger(conf.Log{Level: "error"}))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	get := func() string {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Body.String()
	}
	first := get()
	s.set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ready") }))
	if second := get(); first != "starting" || second != "ready" {
		t.Errorf("served %q then %q", first, second)
	}
}
