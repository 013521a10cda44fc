package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/switch/vault"
)

// TestSettleKeys: tapctl settle-keys gives settle the switch's data keys
// and neither of its switch-only keys; settle's loader takes the result,
// the switch's refuses it.
func TestSettleKeys(t *testing.T) {
	dir := t.TempDir()
	switchKeys, settleKeys := filepath.Join(dir, "vault.keys"), filepath.Join(dir, "settle.keys")
	if err := vault.GenerateKeyringFile(switchKeys); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"settle-keys", "-keys", switchKeys, "-out", settleKeys}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "data keys [1], current v1") {
		t.Fatalf("printed %q", stdout.String())
	}
	text, _ := os.ReadFile(settleKeys)
	if strings.Contains(string(text), "index:") || strings.Contains(string(text), "token-master:") {
		t.Fatalf("settle's key file holds a switch-only key")
	}
	if _, err := vault.LoadDataKeysFile(settleKeys); err != nil {
		t.Fatal(err)
	}
	if _, err := vault.LoadKeyringFile(settleKeys); err == nil {
		t.Fatal("the switch accepts settle's key file")
	}
	// From settle's own file (no switch keys in it) there is nothing to make.
	if code := run([]string{"settle-keys", "-keys", settleKeys, "-out", filepath.Join(dir, "x")}, &stdout, &stderr); code != 1 {
		t.Fatalf("from a data-keys-only file: exit %d, want 1", code)
	}
	if code := run([]string{"settle-keys", "-keys", switchKeys}, &stdout, &stderr); code != 2 {
		t.Fatalf("without -out: exit %d, want 2", code)
	}
}
