package csi

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// HealthHandler serves the probes of the driver's pod:
//
//   - /healthz: 200 while the CSI socket is served, 503 otherwise (restart
//     the container).
//   - /readyz: 200 when the driver has recovered its volumes, serves the
//     socket, reaches etcd and has no volume whose recovery failed; 503
//     with the reason otherwise. Both answer a JSON body with the volumes'
//     Status.
//
// The handler is safe for concurrent use.
func (d *Driver) HealthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if !d.serving.Load() {
			writeHealth(w, http.StatusServiceUnavailable, "the CSI socket is not served", d.Status())
			return
		}
		writeHealth(w, http.StatusOK, "ok", d.Status())
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		st := d.Status()
		switch {
		case !d.ready.Load():
			writeHealth(w, http.StatusServiceUnavailable, "recovering the staged volumes", st)
		case !d.serving.Load():
			writeHealth(w, http.StatusServiceUnavailable, "the CSI socket is not served", st)
		case len(st.Broken) > 0:
			writeHealth(w, http.StatusServiceUnavailable, "volumes could not be mounted again", st)
		default:
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if _, err := d.opts.Client.Etcd().Get(ctx, d.opts.Client.Keys().Prefix+"/meta/ping"); err != nil {
				writeHealth(w, http.StatusServiceUnavailable, "etcd does not answer: "+err.Error(), st)
				return
			}
			writeHealth(w, http.StatusOK, "ready", st)
		}
	})
	return mux
}

// NotReadyHandler answers /healthz with 200 and /readyz with 503 and the
// reason, for the time before a Driver exists (connecting to the cluster).
func NotReadyHandler(reason func() string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeHealth(w, http.StatusOK, "starting: "+reason(), Status{})
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		writeHealth(w, http.StatusServiceUnavailable, "starting: "+reason(), Status{})
	})
	return mux
}

func writeHealth(w http.ResponseWriter, code int, msg string, st Status) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(struct {
		Message string `json:"status"`
		Status
	}{msg, st})
}
