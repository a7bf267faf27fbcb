package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
)

// startS3FrontEnd starts the S3 API of `strata local`; the S3 front-end is not
// part of this build yet, so it starts nothing.
func startS3FrontEnd(context.Context, conf.Config, localOptions, *client.Client, *slog.Logger, io.Writer) (frontEnd, error) {
	return nil, nil
}
