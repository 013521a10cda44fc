package transit

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMasterKeysFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "operator.keys")
	if err := CreateMasterKeysFile(path, []string{"0010", "0021"}); err != nil {
		t.Fatal(err)
	}
	keys, err := LoadMasterKeys(path)
	if err != nil || len(keys) != 2 || len(keys["0010"]) != 32 {
		t.Fatalf("%d keys: %v", len(keys), err)
	}
	if err := CreateMasterKeysFile(path, []string{"0010"}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("replaced: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.keys")
	os.WriteFile(bad, []byte("BJT: AAAA\n"), 0o600)
	if _, err := LoadMasterKeys(bad); err == nil || !strings.Contains(err.Error(), "want OPERATOR: BASE64-KEY") {
		t.Fatalf("an operator named by its member ID: %v", err)
	}
	if _, err := LoadMasterKeys(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "tapctl keys init-operators") {
		t.Fatalf("missing: %v", err)
	}
}
