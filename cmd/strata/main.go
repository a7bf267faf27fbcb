// Command strata is Strata's one binary: the embedded single-node cluster
// (`strata local`), the coordinator and worker daemons, and the client
// commands (`strata fs ...`, `strata report`).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRootCmd()
	err := root.ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "strata:", explain(err))
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(int(ee))
		}
		os.Exit(1)
	}
}

// exitError carries a specific exit status.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "strata",
		Short: "Data orchestration and tiered cache for AI training",
		Long: `Strata puts hot data from S3, GCS, Azure Blob, HDFS and local storage next to
the GPUs. A coordinator keeps one namespace stitched from many under-storage
mounts; workers cache blocks in memory, SSD and HDD tiers; clients read through
FUSE, an S3-compatible API, or these commands.

Start a single-node Strata with no external services:
  strata local

Then, in another terminal:
  strata fs mount /datasets/mnist s3://bucket/mnist --option s3.endpoint=http://127.0.0.1:9000 \
      --option s3.access_key_id=KEY --option s3.secret_access_key=@/path/to/secret
  strata fs ls -l /datasets/mnist
  strata report`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g.register(root)
	root.AddCommand(newLocalCmd(g), newCoordinatorCmd(g), newWorkerCmd(g), newFSCmd(g), newLoadCmd(g), newFreeCmd(g), newReportCmd(g), newFUSECmd(g), newS3Cmd(g), newHDFSCmd(g), newCertCmd(g), newCSICmd(g), newVersionCmd())
	return root
}

// version, commit and date are set at build time with -ldflags
// "-X main.version=... -X main.commit=... -X main.date=..." (deploy/Dockerfile).
var (
	version = "dev"
	commit  = "unknown"
	date    = "unknown"
)

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintf(cmd.OutOrStdout(), "strata %s (commit %s, built %s)\n", version, commit, date)
		},
	}
}
