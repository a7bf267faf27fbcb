package main

import (
	"github.com/stratafs/strata/ufs"
	"github.com/stratafs/strata/ufs/azblob"
	"github.com/stratafs/strata/ufs/gcs"
)

// registerMore registers the backends beyond local and S3.
func registerMore(r *ufs.Registry) {
	gcs.Register(r)
	azblob.Register(r)
}
