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
)

// TestTokenFile: tapctl sends the token of -token-file as a bearer, and a
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
	if code := run([]string{"rotate", "-admin", addr, "-status", "-token-file", file}, &out, &errs); code != 0 ||
		!strings.Contains(out.String(), "rotation idle; keyring v1 (current v1); records v1 3") {
		t.Fatalf("with the token: exit %d, out %q, err %q", code, out.String(), errs.String())
	}
	if code := run([]string{"rotate", "-admin", addr, "-token-file", filepath.Join(t.TempDir(), "none")}, &out, &errs); code != 2 {
		t.Fatalf("missing token file: exit %d", code)
	}
}
