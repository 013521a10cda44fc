package node

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/vault"
)

func writeKeys(t *testing.T, path string, versions ...byte) {
	t.Helper()
	key := func(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	text := "index: " + key(0xee) + "\ntoken-master: " + key(0x7a) + "\n"
	for _, v := range versions {
		text += fmt.Sprintf("v%d: %s\n", v, key(v))
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestRotateOverHTTP rotates the PAN key of a live vault through the admin
// endpoint: a key file that drops a version still in use is refused; one
// that adds v2 re-seals every record under v2, and every token still
// detokenizes to its PAN.
func TestRotateOverHTTP(t *testing.T) {
	dir := t.TempDir()
	kf := filepath.Join(dir, "vault.keys")
	writeKeys(t, kf, 1)
	keys, err := vault.LoadKeyringFile(kf)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(filepath.Join(dir, "vault"), keys)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	luhn := func(body string) iso8583.PAN { return iso8583.PAN(body + string(iso8583.LuhnCheckDigit(body))) }
	pans := map[string]string{}
	for i := range 300 {
		tok := vault.Token{Token: luhn(fmt.Sprintf("629990%09d", i)), PAN: luhn(fmt.Sprintf("622202%09d", i)),
			CardExpiry: "2812", TokenExpiry: "2812", Status: vault.StatusActive, DeviceID: fmt.Sprintf("d%d", i%8),
			WalletAccount: "a", RequestorID: "40010075001"}
		if err := v.Put(tok); err != nil {
			t.Fatal(err)
		}
		pans[tok.Token.Clear()] = tok.PAN.Clear()
	}
	n := &Node{cfg: Config{KeyFile: kf}, log: zerolog.Nop(), Vault: v}
	srv := httptest.NewServer(http.HandlerFunc(n.RotateHandler))
	defer srv.Close()

	writeKeys(t, kf, 2) // v1 dropped while every record uses it
	if resp, _ := http.Post(srv.URL, "", nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("dropping v1: %d, want 409", resp.StatusCode)
	}
	writeKeys(t, kf, 1, 2)
	text, _ := os.ReadFile(kf)
	otherMaster := bytes.Replace(text, []byte("token-master: "+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x7a}, 32))),
		[]byte("token-master: "+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x7b}, 32))), 1)
	os.WriteFile(kf, otherMaster, 0o600)
	if resp, _ := http.Post(srv.URL, "", nil); resp.StatusCode != http.StatusConflict {
		t.Fatalf("another token master: %d, want 409", resp.StatusCode)
	}
	writeKeys(t, kf, 1, 2)
	if resp, _ := http.Post(srv.URL, "", nil); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("rotation to v2: %d, want 202", resp.StatusCode)
	}
	var st RotationStatus
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if !st.Running || time.Now().After(deadline) {
			break
		}
	}
	counts, err := v.VersionCounts()
	if err != nil || len(counts) != 1 || counts[2] != len(pans) {
		t.Fatalf("after rotation: %v %v (status %+v)", counts, err, st)
	}
	for tok, pan := range pans {
		got, err := v.Get(tok)
		if err != nil || got.PAN.Clear() != pan {
			t.Fatalf("token %s after rotation: %v", iso8583.MaskPAN(tok), err)
		}
	}
}

// TestOpenRefusesKeyFilesWithoutSwitchKeys: the switch will not start on a
// key file that lacks the index key or the token master (settle's file,
// say), and says which line to add and how.
func TestOpenRefusesKeyFilesWithoutSwitchKeys(t *testing.T) {
	key := func(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	cases := map[string]struct{ text, want string }{
		"data keys only": {"v1: " + key(1) + "\n", `no index key: the switch needs a line "index: <base64 of 32 bytes>"`},
		"no token master": {"index: " + key(0xee) + "\nv1: " + key(1) + "\n",
			`no token master key: the switch needs a line "token-master: <base64 of 32 bytes>"; add one with: echo "token-master: $(head -c 32 /dev/urandom | base64)" >>`},
	}
	for name, c := range cases {
		cfg, err := LoadConfig("")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Data = t.TempDir()
		cfg.Listen, cfg.Public, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
		cfg.KeyFile, cfg.KeyEnv = filepath.Join(cfg.Data, "switch.keys"), ""
		if err := os.WriteFile(cfg.KeyFile, []byte(c.text), 0o600); err != nil {
			t.Fatal(err)
		}
		n, err := Open(cfg, zerolog.Nop(), nil)
		if err == nil {
			n.Shutdown()
			t.Fatalf("%s: the switch opened", name)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v\nwant it to say %q", name, err, c.want)
		}
	}
}
