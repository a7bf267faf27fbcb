package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigurationDocParses keeps docs/configuration.md true: its example
// must load and validate.
func TestConfigurationDocParses(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	if !ok {
		t.Fatal("no yaml block in docs/configuration.md")
	}
	block, _, _ := strings.Cut(rest, "```")
	p := filepath.Join(t.TempDir(), "strata.yaml")
	if err := os.WriteFile(p, []byte(block), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(p, nil)
	if err != nil {
		t.Fatalf("the documented example does not load: %v", err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the documented example does not validate: %v", err)
	}
	if len(cfg.Worker.Cache.Tiers) != 2 {
		t.Errorf("tiers = %+v", cfg.Worker.Cache.Tiers)
	}
}
