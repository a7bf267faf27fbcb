package csi

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/stratafs/strata/fuse"
)

// Recover mounts again every volume recorded in the state directory and
// re-binds its targets, then marks the driver ready. Call it once before
// Serve (node service). A volume that cannot be recovered now (the cluster
// is unreachable, say) is retried in the background with backoff until Close;
// its failure is returned, joined with the others, but does not stop the
// driver.
func (d *Driver) Recover(ctx context.Context) error {
	if !d.opts.Node {
		return nil
	}
	recs, errs := d.state.load()
	for _, rec := range recs {
		v := &volume{rec: rec}
		d.mu.Lock()
		d.vols[rec.Staging] = v
		d.mu.Unlock()
		unlock := d.locks.lock(rec.Staging)
		err := d.recoverVolume(ctx, v)
		unlock()
		if err != nil {
			errs = append(errs, err)
			d.retry(rec.Staging)
		}
	}
	d.ready.Store(true)
	if len(recs) > 0 {
		d.log.Info("recovered the staged volumes", "volumes", len(recs), "failed", len(errs))
	}
	return errors.Join(errs...)
}

// recoverVolume makes a staged volume whole: its FUSE mount served by this
// process, and each recorded target bound to it. A target whose mount is
// broken gets the new mount on top of the dead one (not instead of it), so
// the mount propagates to the slave copies containers hold; a target whose
// directory is gone (its pod was deleted meanwhile) is forgotten. The caller
// holds the volume lock.
func (d *Driver) recoverVolume(ctx context.Context, v *volume) error {
	rec := v.rec
	if _, err := stateOf(rec.Staging); err != nil {
		return d.failed(v, err)
	}
	live := false
	if v.srv != nil {
		select {
		case <-v.srv.Done():
		default:
			live = true
		}
	}
	if !live {
		srv, err := d.mountFUSE(ctx, rec)
		if err != nil {
			return d.failed(v, err)
		}
		d.adopt(v, srv)
	}
	targets := maps.Clone(rec.Targets)
	var errs []error
	for t, ro := range rec.Targets {
		st, err := stateOf(t)
		switch {
		case err != nil:
			errs = append(errs, err)
		case st == pathMissing:
			d.log.Info("forgetting a target that no longer exists", "volume", rec.VolumeID, "target", t)
			delete(targets, t)
		case st == pathLive:
			// Bound to the live mount already (or served by another
			// process): nothing to do.
		default:
			if err := bindMount(rec.Staging, t, ro); err != nil {
				errs = append(errs, err)
				continue
			}
			d.log.Info("re-bound a target to the new mount", "volume", rec.VolumeID, "target", t, "was", st.String(), "read_only", ro)
		}
	}
	rec.Targets = targets
	if err := d.state.save(rec); err != nil {
		errs = append(errs, err)
	}
	d.mu.Lock()
	v.rec = rec
	d.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return d.failed(v, err)
	}
	if !live {
		d.recovered.Add(1)
	}
	return nil
}

// failed records a recovery failure of v and returns it.
func (d *Driver) failed(v *volume, err error) error {
	err = fmt.Errorf("recover volume %s at %s: %w", v.rec.VolumeID, v.rec.Staging, err)
	d.mu.Lock()
	v.broken = err
	d.mu.Unlock()
	d.log.Error("recovery failed", "volume", v.rec.VolumeID, "staging", v.rec.Staging, "err", err)
	return err
}

// watch recovers the volume staged at staging when srv ends while the volume
// is still staged (its connection was aborted, or it was unmounted from
// outside), until Close.
func (d *Driver) watch(staging string, srv *fuse.Server) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		select {
		case <-srv.Done():
		case <-d.stop:
			return
		}
		d.mu.Lock()
		v := d.vols[staging]
		expected := v == nil || v.srv != srv || v.closing
		d.mu.Unlock()
		if expected {
			return
		}
		d.log.Warn("the FUSE server of a staged volume ended; mounting it again", "volume", v.rec.VolumeID, "staging", staging)
		d.retry(staging)
	}()
}

// retry recovers the volume staged at staging in the background, with
// backoff from 1 s to 30 s, until it succeeds, the volume is unstaged, or
// Close.
func (d *Driver) retry(staging string) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		delay := time.Duration(0)
		for {
			select {
			case <-d.stop:
				return
			case <-time.After(delay):
			}
			delay = min(max(2*delay, time.Second), 30*time.Second)
			unlock := d.locks.lock(staging)
			v := d.volumeAt(staging)
			if v == nil || v.closing {
				unlock()
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := d.recoverVolume(ctx, v)
			cancel()
			unlock()
			if err == nil {
				d.log.Info("recovered", "volume", v.rec.VolumeID, "staging", staging)
				return
			}
		}
	}()
}

// UnmountAll unpublishes and unstages every volume this driver knows, for a
// node being drained of Strata or for tests; the state directory is left
// empty.
func (d *Driver) UnmountAll() error {
	d.mu.Lock()
	stagings := make([]string, 0, len(d.vols))
	for s := range d.vols {
		stagings = append(stagings, s)
	}
	d.mu.Unlock()
	var errs []error
	for _, s := range stagings {
		unlock := d.locks.lock(s)
		if err := d.unstage(s, d.volumeAt(s)); err != nil {
			errs = append(errs, err)
		}
		unlock()
	}
	return errors.Join(errs...)
}

// Status describes the node's volumes for /readyz and logs.
type Status struct {
	// Volumes is the number of staged volumes.
	Volumes int `json:"volumes"`
	// Broken lists the volumes whose recovery failed last time, with why.
	Broken map[string]string `json:"broken,omitempty"`
	// Recovered counts the volumes mounted again after their server died.
	Recovered int64 `json:"recovered"`
}

// Status returns the state of the staged volumes.
func (d *Driver) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := Status{Volumes: len(d.vols), Recovered: d.recovered.Load()}
	for _, v := range d.vols {
		if v.broken != nil {
			if st.Broken == nil {
				st.Broken = map[string]string{}
			}
			st.Broken[v.rec.VolumeID] = v.broken.Error()
		}
	}
	return st
}
