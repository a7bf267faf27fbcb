package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/stratafs/strata/ufs"
)

// mountOptionsHelp is the part of `fs mount --help` that says how options
// and their secrets are given.
const mountOptionsHelp = `Giving options:
  --option KEY=VALUE        the value as written (repeatable)
  --option KEY=@FILE        the value read from FILE, one trailing newline cut
                            (write @@ to start a literal value with @)
  --option-file FILE        KEY=VALUE lines; blank lines and lines starting
                            with # are skipped (repeatable)
  --option wins over --option-file, and a later one over an earlier one.
  Secrets (keys with secret, key, token, password, credential, sas,
  connection_string) given literally on the command line are visible to
  every user in ps and stay in the shell history: strata warns, and
  KEY=@FILE or --option-file keeps them off the command line.`

// parseMountOptions builds a mount's options from --option-file files (in
// order) and then --option flags, which win. A flag value "@FILE" is read
// from FILE without its trailing newline; "@@..." is a literal value that
// starts with "@". A secret given literally on the command line gets a
// warning on warn. Errors wrap ufs.ErrInvalidURI and name the flag, file and
// line; they never contain option values.
func parseMountOptions(options, optionFiles []string, warn io.Writer) (ufs.Options, error) {
	opts := ufs.Options{}
	for _, file := range optionFiles {
		if err := readOptionFile(file, opts); err != nil {
			return nil, err
		}
	}
	var exposed []string
	for _, o := range options {
		k, v, ok := strings.Cut(o, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: %s: write KEY=VALUE or KEY=@FILE, or use --option-file", ufs.ErrInvalidURI, describeOption(o))
		}
		switch {
		case strings.HasPrefix(v, "@@"):
			v = v[1:]
			if literalSecret(k, v) {
				exposed = append(exposed, k)
			}
		case strings.HasPrefix(v, "@"):
			b, err := readOptionValue(v[1:])
			if err != nil {
				return nil, fmt.Errorf("%w: --option %s=@%s: %v", ufs.ErrInvalidURI, k, v[1:], err)
			}
			v = b
		default:
			if literalSecret(k, v) {
				exposed = append(exposed, k)
			}
		}
		opts[k] = v
	}
	if len(exposed) > 0 && warn != nil {
		slices.Sort(exposed)
		exposed = slices.Compact(exposed)
		fmt.Fprintf(warn, "warning: %s given on the command line: other users see command lines in `ps`, and shells keep them in their history; "+
			"use --option %s=@FILE or --option-file FILE\n", strings.Join(exposed, ", "), exposed[0])
	}
	return opts, nil
}

// literalSecret reports whether an option given on the command line exposes
// a credential: a secret key (as `fs mounts` masks them) with a value, other
// than a file name (*_file) or the s3/gcs/azblob.credentials mode.
func literalSecret(key, value string) bool {
	return value != "" && ufs.IsSecret(key) && !strings.HasSuffix(strings.ToLower(key), "_file")
}

// readOptionValue reads an option value from a file: its content without
// one trailing newline (\n or \r\n).
func readOptionValue(file string) (string, error) {
	if file == "" {
		return "", fmt.Errorf("no file name after @")
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("cannot read the value: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	return string(b), nil
}

// readOptionFile adds the KEY=VALUE lines of file to opts.
func readOptionFile(file string, opts ufs.Options) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("%w: --option-file %s: %v", ufs.ErrInvalidURI, file, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20) // inline JSON keys are long
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return fmt.Errorf("%w: --option-file %s, line %d: want KEY=VALUE (or a # comment)", ufs.ErrInvalidURI, file, n)
		}
		opts[k] = strings.TrimSpace(v) // spaces around the value are ignored
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: --option-file %s: %v", ufs.ErrInvalidURI, file, err)
	}
	return nil
}

// describeOption names a malformed --option for an error message without
// echoing what may be a secret value.
func describeOption(o string) string {
	k, _, ok := strings.Cut(o, "=")
	switch {
	case ok && strings.TrimSpace(k) == "":
		return "an --option with an empty KEY"
	case !ok && optionKeyLike(o):
		return fmt.Sprintf("--option %q has no '='", o)
	default:
		return "an --option without '='"
	}
}

// optionKeyLike reports whether s looks like an option key (s3.region), not
// a value that could be a secret.
func optionKeyLike(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
