package main

import (
	"context"
	"errors"
	"io"
	"log/slog"

	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
)

// startFUSEFrontEnd mounts the namespace for `strata local --fuse`; the FUSE
// front-end is not part of this build yet, so it refuses the flag.
func startFUSEFrontEnd(_ context.Context, _ conf.Config, opts localOptions, _ *client.Client, _ *slog.Logger, _ io.Writer) (frontEnd, error) {
	if opts.fuseDir != "" {
		return nil, errors.New("--fuse: this build has no FUSE front-end yet")
	}
	return nil, nil
}
