package conf

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestHDFSConfig(t *testing.T) {
	d := Default().HDFS
	if !d.Enabled || d.Listen != "127.0.0.1:9870" || d.TLS != HDFSTLSAuto || d.Anonymous != HDFSAnonymousOff || len(d.Writers) != 0 {
		t.Errorf("defaults %+v", d)
	}
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}

	// The file, then the environment.
	p := filepath.Join(t.TempDir(), "strata.yaml")
	yaml := "hdfs:\n  listen: 0.0.0.0:9870\n  anonymous: read\n  writers: [etl, \"*\"]\n  max_append_size: 64MiB\n  list_batch_size: 500\n"
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p, []string{"STRATA_HDFS_TLS=off", "STRATA_HDFS_ENABLED=false"})
	if err != nil || c.Validate() != nil {
		t.Fatalf("Load = %v, Validate = %v", err, c.Validate())
	}
	h := c.HDFS
	if h.Listen != "0.0.0.0:9870" || h.Anonymous != "read" || !slices.Equal(h.Writers, []string{"etl", "*"}) || h.MaxAppendSize != 64<<20 ||
		h.ListBatchSize != 500 || h.TLS != HDFSTLSOff || h.Enabled {
		t.Errorf("loaded %+v", h)
	}

	// Every bad field is reported at once.
	c = Default()
	c.HDFS = HDFS{Listen: "nope", TLS: "on", CertFile: "c.crt", Anonymous: "all", Writers: []string{"ok", "bad/name", ""},
		MaxAppendSize: -1, ListBatchSize: 0, ReadBufferBudget: 1 << 20}
	err = c.Validate()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Validate = %v", err)
	}
	for _, want := range []string{"hdfs.listen", "hdfs.tls", "hdfs.cert_file", "hdfs.anonymous", "hdfs.writers[1]", "hdfs.writers[2]",
		"hdfs.max_append_size", "hdfs.list_batch_size", "hdfs.read_buffer_budget", "hdfs.read_header_timeout", "hdfs.idle_timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %s:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "writers[0]") {
		t.Errorf("a good writer reported: %v", err)
	}
	c = Default()
	c.HDFS.TLS, c.HDFS.CertFile, c.HDFS.KeyFile = HDFSTLSOff, "a.crt", "a.key"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "tls is off") {
		t.Errorf("cert_file with tls off: %v", err)
	}
}
