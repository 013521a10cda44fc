package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/configs"
)

func TestCVMLimitConfig(t *testing.T) {
	c, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if c.CVMLimit != 300_00 {
		t.Fatalf("built-in cvm_limit %d, want 30000", c.CVMLimit)
	}
	// A config file written before cvm_limit existed gets the default.
	var without []string
	for line := range strings.Lines(string(configs.Switch)) {
		if !strings.HasPrefix(line, "cvm_limit:") {
			without = append(without, line)
		}
	}
	path := filepath.Join(t.TempDir(), "switch.yaml")
	if err := os.WriteFile(path, []byte(strings.Join(without, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err = LoadConfig(path); err != nil || c.CVMLimit != CVMLimitDefault {
		t.Fatalf("config without cvm_limit: %d, %v", c.CVMLimit, err)
	}
	c.CVMLimit = -1
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "cvm_limit") {
		t.Fatalf("negative cvm_limit: %v", err)
	}
	c.CVMLimit = 0
	if err := c.validate(); err != nil && strings.Contains(err.Error(), "cvm_limit") {
		t.Fatalf("cvm_limit 0 refused: %v", err)
	}
}
