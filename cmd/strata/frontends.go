package main

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
)

// localOptions are `strata local` choices beyond the config.
type localOptions struct {
	// fuseDir, when set, mounts the namespace there with FUSE.
	fuseDir string
	// metrics receives the front-ends' Prometheus collectors.
	metrics prometheus.Registerer
}

// frontEnd is a running front-end of `strata local`.
type frontEnd interface {
	Close(ctx context.Context) error
}

// startFrontEnds starts the front-ends `strata local` runs beside its
// coordinator and worker, printing where each listens.
func startFrontEnds(ctx context.Context, cfg conf.Config, opts localOptions, c *client.Client, log *slog.Logger, out io.Writer) ([]frontEnd, error) {
	var started []frontEnd
	for _, start := range []func(context.Context, conf.Config, localOptions, *client.Client, *slog.Logger, io.Writer) (frontEnd, error){
		startS3FrontEnd, startHDFSFrontEnd, startFUSEFrontEnd,
	} {
		fe, err := start(ctx, cfg, opts, c, log, out)
		if err != nil {
			_ = stopFrontEnds(started)
			return nil, err
		}
		if fe != nil {
			started = append(started, fe)
		}
	}
	return started, nil
}

func stopFrontEnds(fes []frontEnd) error {
	var errs []error
	for i := len(fes) - 1; i >= 0; i-- {
		ctx, cancel := context.WithTimeout(context.Background(), 15e9)
		errs = append(errs, fes[i].Close(ctx))
		cancel()
	}
	return errors.Join(errs...)
}
