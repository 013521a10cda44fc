package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/switch/node"
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

// TestTokenFile: tapctl sends the token of -admin-token-file as a bearer, and a
// switch that refuses it (401) makes a clear error and exit 1.
func TestTokenFile(t *testing.T) {
	const token = "0123456789abcdef0123456789abcdef"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/admin/rotate" || r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "admin: this listener needs the bearer token", http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(node.RotationStatus{Keyring: []uint16{1}, Versions: map[string]int{"v1": 3}})
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	file := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errs bytes.Buffer
	if code := run([]string{"rotate", "-admin", addr, "-status"}, &out, &errs); code != 1 || !strings.Contains(errs.String(), "401") {
		t.Fatalf("without the token: exit %d, %q", code, errs.String())
	}
	errs.Reset()
	if code := run([]string{"rotate", "-admin", addr, "-status", "-admin-token-file", file}, &out, &errs); code != 0 ||
		!strings.Contains(out.String(), "rotation idle; keyring v1 (current v1); records v1 3") {
		t.Fatalf("with the token: exit %d, out %q, err %q", code, out.String(), errs.String())
	}
	if code := run([]string{"rotate", "-admin", addr, "-token-file", filepath.Join(t.TempDir(), "none")}, &out, &errs); code != 2 {
		t.Fatalf("missing token file: exit %d", code)
	}
}
