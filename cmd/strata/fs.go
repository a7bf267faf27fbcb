package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/stratafs/strata/client"
	"github.com/stratafs/strata/conf"
	"github.com/stratafs/strata/namespace"
	"github.com/stratafs/strata/rpcpb"
	"github.com/stratafs/strata/ufs"
)

func newFSCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fs",
		Short: "Mount under-storages and work with files in the namespace",
		Long: `Commands on Strata's unified namespace. Paths are absolute namespace paths
such as /datasets/mnist/train/0001.png; in "fs cp", local files are written
with a file: prefix (file:./model.pt) or as "-" for stdin/stdout.`,
	}
	cmd.AddCommand(newMountCmd(g), newUnmountCmd(g), newMountsCmd(g), newLsCmd(g), newStatCmd(g),
		newCatCmd(g), newHeadCmd(g), newCpCmd(g), newMkdirCmd(g), newRmCmd(g), newMvCmd(g),
		newPinCmd(g), newUnpinCmd(g), newPinsCmd(g))
	return cmd
}

func newMountCmd(g *globals) *cobra.Command {
	var (
		options     []string
		optionFiles []string
		readOnly    bool
		writeMode   string
		metaTTL     conf.Duration
		replicas    int
	)
	cmd := &cobra.Command{
		Use:   "mount PATH URI",
		Short: "Attach an under-storage location at a namespace path",
		Long: `Attach an under-storage location (S3, GCS, Azure Blob, HDFS, local directory) at a
namespace path. The coordinator checks the URI, the scheme, and that the bucket
or directory is reachable with the given credentials before storing the mount.
The mount point must be a clean absolute path, not inside or above another
mount. Credentials are stored in etcd and never printed.

Credentials are never taken from the servers' environment unless the mount
says so: give keys, or <scheme>.credentials=ambient to use the host's own
(AWS default chain, Google Application Default Credentials, Azure
environment and default credential), or <scheme>.credentials=anonymous for
unsigned requests (public buckets, emulators). A mount with neither fails.

Options per scheme (--option KEY=VALUE, repeatable):
  s3:     s3.credentials (static, ambient or anonymous; static when keys are
          given), s3.access_key_id, s3.secret_access_key, s3.session_token,
          s3.endpoint, s3.region, s3.path_style, s3.part_size,
          s3.upload_concurrency, s3.max_keys, s3.max_attempts,
          s3.response_timeout (wait for a response's headers; default 2m)
  gs:     gcs.credentials (static, ambient or anonymous), gcs.credentials_file,
          gcs.credentials_json, gcs.endpoint, gcs.project, gcs.chunk_size,
          gcs.max_attempts
  azblob: azblob.credentials (static, ambient or anonymous),
          azblob.account_name, azblob.account_key, azblob.sas_token,
          azblob.connection_string, azblob.endpoint, azblob.block_size,
          azblob.concurrency, azblob.max_retries
  file:   local.fsync; the directory must be under the coordinator's
          coordinator.allowed_local_roots (any directory for strata local)

` + mountOptionsHelp,
		Example: `  strata fs mount /datasets/mnist s3://my-bucket/mnist \
      --option s3.endpoint=http://127.0.0.1:9000 \
      --option s3.access_key_id=minio --option s3.secret_access_key=@/run/secrets/minio
  strata fs mount /datasets/mnist s3://my-bucket/mnist --option-file ./minio.options
  strata fs mount /public s3://open-data/imagenet --option s3.credentials=anonymous
  strata fs mount /team s3://team-bucket --option s3.credentials=ambient   # the instance role
  strata fs mount /scratch file:///mnt/nvme/scratch
  strata fs mount /models gs://team-models --option gcs.credentials=ambient \
      --read-only --metadata-ttl 5m`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := parseMountOptions(options, optionFiles, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			ttl := time.Duration(-1)
			if cmd.Flags().Changed("metadata-ttl") {
				ttl = metaTTL.D()
			}
			m := namespace.Mount{Path: args[0], URI: args[1], Options: opts, ReadOnly: readOnly,
				WriteMode: strings.ToUpper(writeMode), MetadataTTL: ttl, Replicas: replicas}
			return g.withCoordinator(cmd, func(ctx context.Context, cc rpcpb.CoordinatorClient) error {
				resp, err := cc.AddMount(ctx, &rpcpb.AddMountRequest{Mount: rpcpb.FromMount(m)})
				if err != nil {
					return rpcpb.FromStatus(err)
				}
				got := rpcpb.ToMount(resp.GetMount())
				fmt.Fprintf(cmd.OutOrStdout(), "mounted %s at %s\n", got.URI, got.Path)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&options, "option", "o", nil, "backend option KEY=VALUE, or KEY=@FILE to read the value from FILE (repeatable)")
	f.StringArrayVar(&optionFiles, "option-file", nil, "read backend options from FILE: KEY=VALUE lines, # comments (repeatable)")
	f.BoolVar(&readOnly, "read-only", false, "refuse writes through Strata")
	f.StringVar(&writeMode, "write-mode", namespace.WriteCacheThrough, "CACHE_THROUGH (UFS and cache) or THROUGH (UFS only)")
	f.Var(&metaTTL, "metadata-ttl", "how long stat and list results are cached, e.g. 30s; 0 checks the UFS every time (default: the worker's)")
	f.IntVar(&replicas, "replicas", 1, "how many workers cache each block")
	return cmd
}

func newUnmountCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "unmount PATH",
		Aliases: []string{"umount"},
		Short:   "Detach a mount (the under-storage is not touched)",
		Example: `  strata fs unmount /datasets/mnist`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withCoordinator(cmd, func(ctx context.Context, cc rpcpb.CoordinatorClient) error {
				if _, err := cc.RemoveMount(ctx, &rpcpb.RemoveMountRequest{Path: args[0]}); err != nil {
					return rpcpb.FromStatus(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "unmounted %s\n", args[0])
				return nil
			})
		},
	}
}

func newMountsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "mounts",
		Short:   "List the mounts (credentials masked)",
		Example: `  strata fs mounts`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withCoordinator(cmd, func(ctx context.Context, cc rpcpb.CoordinatorClient) error {
				resp, err := cc.ListMounts(ctx, &rpcpb.ListMountsRequest{})
				if err != nil {
					return rpcpb.FromStatus(err)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PATH\tURI\tMODE\tWRITE\tOPTIONS")
				for _, pm := range resp.GetMounts() {
					m := rpcpb.ToMount(pm).Masked()
					mode := "rw"
					if m.ReadOnly {
						mode = "ro"
					}
					var opts []string
					for k, v := range m.Options {
						opts = append(opts, k+"="+v)
					}
					sort.Strings(opts)
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Path, m.URI, mode, m.WriteMode, strings.Join(opts, ","))
				}
				return tw.Flush()
			})
		},
	}
}

func newLsCmd(g *globals) *cobra.Command {
	var long, recursive, sync, human bool
	cmd := &cobra.Command{
		Use:   "ls [-l] [-R] [--sync] PATH...",
		Short: "List directories",
		Long: `List directories of the namespace. Listings come from the owning worker's
metadata cache (refreshed after the mount's metadata TTL); --sync reads the
under-storage now.`,
		Example: `  strata fs ls /
  strata fs ls -l /datasets/mnist
  strata fs ls -lR --sync /datasets/mnist/train`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				out := cmd.OutOrStdout()
				for i, p := range args {
					if len(args) > 1 || recursive {
						if i > 0 {
							fmt.Fprintln(out)
						}
					}
					if err := lsPath(ctx, c, out, p, long, recursive, sync, human, len(args) > 1 || recursive); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&long, "long", "l", false, "long format: type, size, modification time, name")
	f.BoolVarP(&recursive, "recursive", "R", false, "list subdirectories recursively")
	f.BoolVar(&sync, "sync", false, "bypass the metadata cache and read the under-storage")
	f.BoolVarP(&human, "human-readable", "H", false, "sizes in KiB, MiB, GiB")
	return cmd
}

func lsPath(ctx context.Context, c *client.Client, out io.Writer, path string, long, recursive, sync, human, header bool) error {
	fi, err := c.Stat(ctx, path, sync)
	if err != nil {
		return err
	}
	if !fi.IsDir {
		printEntry(out, fi, long, human)
		return nil
	}
	var entries []namespace.FileInfo
	for e, err := range c.List(ctx, fi.Path, sync) {
		if err != nil {
			return err
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	if header {
		fmt.Fprintf(out, "%s:\n", fi.Path)
	}
	for _, e := range entries {
		printEntry(out, e, long, human)
	}
	if recursive {
		for _, e := range entries {
			if e.IsDir {
				fmt.Fprintln(out)
				if err := lsPath(ctx, c, out, e.Path, long, true, sync, human, true); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func printEntry(out io.Writer, e namespace.FileInfo, long, human bool) {
	name := e.Name()
	if e.IsDir {
		name += "/"
	}
	if !long {
		fmt.Fprintln(out, name)
		return
	}
	kind := "-"
	if e.IsDir {
		kind = "d"
	}
	size := fmt.Sprint(e.Size)
	if human {
		size = conf.Size(e.Size).Human()
	}
	mt := "-"
	if !e.ModTime.IsZero() {
		mt = e.ModTime.Local().Format("2006-01-02 15:04:05")
	}
	fmt.Fprintf(out, "%s %12s  %19s  %s\n", kind, size, mt, name)
}

func newStatCmd(g *globals) *cobra.Command {
	var sync bool
	cmd := &cobra.Command{
		Use:     "stat PATH...",
		Short:   "Show a file's or directory's metadata",
		Example: `  strata fs stat /datasets/mnist/train.bin`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				for _, p := range args {
					fi, err := c.Stat(ctx, p, sync)
					if err != nil {
						return err
					}
					kind := "file"
					switch {
					case fi.Virtual:
						kind = "directory (virtual: holds mounts)"
					case fi.MountPoint:
						kind = "directory (mount point)"
					case fi.IsDir:
						kind = "directory"
					}
					out := cmd.OutOrStdout()
					fmt.Fprintf(out, "Path:     %s\nType:     %s\nSize:     %d (%s)\n", fi.Path, kind, fi.Size, conf.Size(fi.Size).Human())
					if !fi.ModTime.IsZero() {
						fmt.Fprintf(out, "Modified: %s\n", fi.ModTime.Local().Format(time.RFC3339Nano))
					}
					if fi.ETag != "" {
						fmt.Fprintf(out, "ETag:     %s\n", fi.ETag)
					}
					if !fi.Virtual {
						if m, rel, err := c.Mounts().Resolve(fi.Path); err == nil {
							fmt.Fprintf(out, "Mount:    %s (%s)\nUFS path: %s\n", m.Path, m.URI, ufs.Join(strings.TrimSuffix(m.URI, "/"), rel))
						}
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&sync, "sync", false, "bypass the metadata cache")
	return cmd
}

// copyFile streams a namespace file to w. When the file changed in the UFS
// before any byte was written, it reopens it once with fresh metadata.
func copyFile(ctx context.Context, c *client.Client, w io.Writer, path string, limit int64) error {
	sync := false
	for attempt := 0; ; attempt++ {
		f, err := c.Open(ctx, path, sync)
		if err != nil {
			return err
		}
		cw := &countWriter{w: w}
		var r io.Reader = f
		if limit >= 0 {
			r = io.LimitReader(f, limit)
		}
		_, err = io.CopyBuffer(cw, r, make([]byte, 1<<20))
		f.Close()
		if errors.Is(err, ufs.ErrChanged) && cw.n == 0 && attempt == 0 {
			sync = true
			continue
		}
		if errors.Is(err, ufs.ErrChanged) {
			return fmt.Errorf("%s changed in the under-storage while it was read; run the command again: %w", path, err)
		}
		return err
	}
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func newCatCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "cat PATH...",
		Short:   "Print files to standard output",
		Example: `  strata fs cat /datasets/mnist/labels.csv | head`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				for _, p := range args {
					if err := copyFile(ctx, c, cmd.OutOrStdout(), p, -1); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
}

func newHeadCmd(g *globals) *cobra.Command {
	var n conf.Size = 1024
	cmd := &cobra.Command{
		Use:     "head [-c SIZE] PATH",
		Short:   "Print the first bytes of a file",
		Example: `  strata fs head -c 4KiB /datasets/mnist/train.bin | xxd | head`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return copyFile(ctx, c, cmd.OutOrStdout(), args[0], int64(n))
			})
		},
	}
	cmd.Flags().VarP(&n, "bytes", "c", "how many bytes to print")
	return cmd
}

// localPath reports whether a cp argument names a local file, and which.
func localPath(arg string) (string, bool) {
	if arg == "-" {
		return "-", true
	}
	if p, ok := strings.CutPrefix(arg, "file://"); ok {
		return p, true
	}
	if p, ok := strings.CutPrefix(arg, "file:"); ok {
		return p, true
	}
	return "", false
}

func newCpCmd(g *globals) *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:   "cp [-r] SRC DST",
		Short: "Copy files between the namespace and local disk, or within the namespace",
		Long: `Copy files. Local paths are written with a file: prefix (file:./x, file:/tmp/x)
or "-" for standard input/output; other paths are namespace paths. Writes go
through to the under-storage: when cp returns, the under-storage has the data.`,
		Example: `  strata fs cp /datasets/mnist/train.bin file:./train.bin
  strata fs cp file:./model.pt /checkpoints/run1/model.pt
  strata fs cp -r file:./images /datasets/images
  tar c dir | strata fs cp - /backups/dir.tar`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return cp(ctx, c, cmd, args[0], args[1], recursive)
			})
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "copy directories recursively")
	return cmd
}

func cp(ctx context.Context, c *client.Client, cmd *cobra.Command, src, dst string, recursive bool) error {
	lsrc, srcLocal := localPath(src)
	ldst, dstLocal := localPath(dst)
	switch {
	case srcLocal && dstLocal:
		return errors.New("both paths are local; use your shell's cp")
	case srcLocal:
		if lsrc == "-" {
			_, err := c.Create(ctx, dst, cmd.InOrStdin(), -1)
			return err
		}
		st, err := os.Stat(lsrc)
		if err != nil {
			return err
		}
		if st.IsDir() {
			if !recursive {
				return fmt.Errorf("%s is a directory; use cp -r", lsrc)
			}
			return filepath.WalkDir(lsrc, func(p string, d os.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel, _ := filepath.Rel(lsrc, p)
				target := dst
				if rel != "." {
					target = namespace.Join(strings.TrimSuffix(dst, "/"), filepath.ToSlash(rel))
				}
				if d.IsDir() {
					return c.Mkdir(ctx, target)
				}
				return uploadFile(ctx, c, p, target)
			})
		}
		return uploadFile(ctx, c, lsrc, dst)
	case dstLocal:
		if ldst == "-" {
			return copyFile(ctx, c, cmd.OutOrStdout(), src, -1)
		}
		fi, err := c.Stat(ctx, src, false)
		if err != nil {
			return err
		}
		if fi.IsDir {
			if !recursive {
				return fmt.Errorf("%s is a directory; use cp -r", src)
			}
			return downloadTree(ctx, c, fi.Path, ldst)
		}
		if st, err := os.Stat(ldst); err == nil && st.IsDir() {
			ldst = filepath.Join(ldst, fi.Name())
		}
		return downloadFile(ctx, c, fi.Path, ldst)
	default:
		f, err := c.Open(ctx, src, false)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = c.Create(ctx, dst, f, f.Size())
		return err
	}
}

func uploadFile(ctx context.Context, c *client.Client, local, dst string) error {
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = c.Create(ctx, dst, f, st.Size())
	return err
}

// downloadFile writes to a temporary name and renames, so a failed copy
// never leaves a truncated file under the final name.
func downloadFile(ctx context.Context, c *client.Client, src, local string) error {
	tmp, err := os.CreateTemp(filepath.Dir(local), "."+filepath.Base(local)+".strata-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := copyFile(ctx, c, tmp, src, -1); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), local)
}

func downloadTree(ctx context.Context, c *client.Client, src, local string) error {
	if err := os.MkdirAll(local, 0o755); err != nil {
		return err
	}
	var entries []namespace.FileInfo
	for e, err := range c.List(ctx, src, false) {
		if err != nil {
			return err
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b namespace.FileInfo) int { return strings.Compare(a.Path, b.Path) })
	for _, e := range entries {
		target := filepath.Join(local, e.Name())
		var err error
		if e.IsDir {
			err = downloadTree(ctx, c, e.Path, target)
		} else {
			err = downloadFile(ctx, c, e.Path, target)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func newMkdirCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "mkdir PATH...",
		Short:   "Create directories (and their parents)",
		Example: `  strata fs mkdir /checkpoints/run2`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				for _, p := range args {
					if err := c.Mkdir(ctx, p); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
}

func newRmCmd(g *globals) *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:   "rm [-r] PATH...",
		Short: "Delete files (and, with -r, directories) in the under-storage",
		Example: `  strata fs rm /checkpoints/run1/step-100.pt
  strata fs rm -r /checkpoints/run1`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				for _, p := range args {
					if err := c.Remove(ctx, p, recursive); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&recursive, "recursive", "r", false, "delete directories and their contents")
	return cmd
}

func newMvCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "mv SRC DST",
		Short:   "Rename a file within one mount",
		Example: `  strata fs mv /checkpoints/tmp.pt /checkpoints/final.pt`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				return c.Rename(ctx, args[0], args[1])
			})
		},
	}
}
