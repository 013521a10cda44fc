package vault

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testKey is a key of 32 copies of b, so each key in a test file is distinct
// and recognisable.
func testKey(b byte) string {
	return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, keyBytes))
}

func testKeyring(t testing.TB, versions ...byte) *Keyring {
	t.Helper()
	text := "index: " + testKey(0xee) + "\n"
	for _, v := range versions {
		text += fmt.Sprintf("v%d: %s\n", v, testKey(v))
	}
	k, err := ParseKeyring([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseKeyring(t *testing.T) {
	short := base64.StdEncoding.EncodeToString(make([]byte, 31))
	tests := []struct {
		name    string
		text    string
		current uint16
		wantErr string // substring; "" means success
	}{
		{"good", "# keys\n\nindex: " + testKey(1) + "\nv1: " + testKey(2) + "\n  v3 :  " + testKey(3) + "  \nv2: " + testKey(4) + "\n", 3, ""},
		{"missing index", "v1: " + testKey(2), 0, "no index key"},
		{"two index keys", "index: " + testKey(1) + "\nindex: " + testKey(2) + "\nv1: " + testKey(3), 0, "line 2: a second index key"},
		{"duplicate version", "index: " + testKey(1) + "\nv1: " + testKey(2) + "\nv1: " + testKey(3), 0, "line 3: data key v1 appears twice"},
		{"wrong length", "index: " + testKey(1) + "\nv1: " + short, 0, "line 2: data key v1: decodes to 31 bytes, want 32"},
		{"short index", "index: " + short + "\nv1: " + testKey(1), 0, "line 1: index key: decodes to 31 bytes"},
		{"bad base64", "index: " + testKey(1) + "\nv1: " + testKey(2)[:40] + "!!!!", 0, "line 2: data key v1: not valid standard base64"},
		{"no data key", "index: " + testKey(1) + "\n", 0, "no data key"},
		{"version zero", "index: " + testKey(1) + "\nv0: " + testKey(2), 0, "line 2: label must be"},
		{"version too big", "index: " + testKey(1) + "\nv65536: " + testKey(2), 0, "line 2: label must be"},
		{"unknown label", "index: " + testKey(1) + "\nkey: " + testKey(2), 0, "line 2: label must be"},
		{"no colon", "index: " + testKey(1) + "\n" + testKey(2), 0, "line 2: want"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKeyring([]byte(tt.text))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := k.CurrentVersion(); got != tt.current {
					t.Fatalf("current version %d, want %d", got, tt.current)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
			}
			assertNoKeyText(t, err.Error(), tt.text)
		})
	}
}

// assertNoKeyText fails if msg repeats any base64 run from the key file.
func assertNoKeyText(t *testing.T, msg, text string) {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		_, value, _ := strings.Cut(line, ":")
		if value = strings.TrimSpace(value); len(value) >= 8 && strings.Contains(msg, value[:8]) {
			t.Fatalf("error %q repeats key text", msg)
		}
	}
}

func TestKeyringNeverPrintsKeys(t *testing.T) {
	k := testKeyring(t, 1)
	raw := string(bytes.Repeat([]byte{0xee}, 4))
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%#v", k), fmt.Sprintf("%x", k), fmt.Sprintf("%+v", *k)} {
		if strings.Contains(s, raw) || strings.Contains(s, "eeeeeeee") || strings.Contains(s, "238, 238") {
			t.Fatalf("keyring printed key material: %s", s)
		}
	}
}

func TestSealOpen(t *testing.T) {
	k := testKeyring(t, 1)
	pan, aad := []byte("4111111111111111"), []byte("4900000000000004")
	sealed := k.Seal(pan, aad)
	if len(sealed) != len(pan)+sealOverheadBytes {
		t.Fatalf("sealed %d bytes, want %d", len(sealed), len(pan)+sealOverheadBytes)
	}
	if bytes.Contains(sealed, pan) {
		t.Fatal("sealed blob contains the plaintext")
	}
	got, err := k.Open(sealed, aad)
	if err != nil || !bytes.Equal(got, pan) {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if again := k.Seal(pan, aad); bytes.Equal(again, sealed) {
		t.Fatal("two seals of the same PAN are equal: nonce not random")
	}
	for i := range sealed {
		tampered := bytes.Clone(sealed)
		tampered[i] ^= 0x01
		if _, err := k.Open(tampered, aad); err == nil {
			t.Fatalf("Open accepted a blob with byte %d flipped", i)
		}
	}
	if _, err := k.Open(sealed, []byte("4900000000000012")); err == nil {
		t.Fatal("Open accepted the wrong aad")
	}
	if _, err := k.Open(sealed[:sealOverheadBytes-1], aad); err == nil {
		t.Fatal("Open accepted a short blob")
	}
}

func TestRotation(t *testing.T) {
	old := testKeyring(t, 1)
	aad := []byte("4900000000000004")
	sealedV1 := old.Seal([]byte("4111111111111111"), aad)

	rotated := testKeyring(t, 1, 2)
	if rotated.CurrentVersion() != 2 {
		t.Fatalf("current version %d, want 2", rotated.CurrentVersion())
	}
	if got, err := rotated.Open(sealedV1, aad); err != nil || string(got) != "4111111111111111" {
		t.Fatalf("v1 blob under rotated keyring: %q, %v", got, err)
	}
	sealedV2 := rotated.Seal([]byte("4111111111111111"), aad)
	if sealedV2[0] != 0 || sealedV2[1] != 2 {
		t.Fatalf("new seal has version bytes %x, want 0002", sealedV2[:2])
	}
	if _, err := old.Open(sealedV2, aad); err == nil || !strings.Contains(err.Error(), "v2") {
		t.Fatalf("old keyring opening a v2 blob: %v, want an unknown-version error", err)
	}
	if !bytes.Equal(old.IndexHash("4111111111111111"), rotated.IndexHash("4111111111111111")) {
		t.Fatal("index hash changed with data-key rotation")
	}
}

func TestIndexHash(t *testing.T) {
	k := testKeyring(t, 1)
	h := k.IndexHash("4111111111111111")
	if len(h) != 32 {
		t.Fatalf("index hash is %d bytes", len(h))
	}
	if bytes.Equal(h, k.IndexHash("4111111111111129")) {
		t.Fatal("two PANs share an index hash")
	}
	other, _ := ParseKeyring([]byte("index: " + testKey(0x11) + "\nv1: " + testKey(1)))
	if bytes.Equal(h, other.IndexHash("4111111111111111")) {
		t.Fatal("index hash does not depend on the index key")
	}
}

func TestKeyringFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.keys")
	if err := GenerateKeyringFile(path); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Fatalf("generated file mode %#o, want 0600", perm)
	}
	if err := GenerateKeyringFile(path); err == nil {
		t.Fatal("GenerateKeyringFile overwrote an existing file")
	}
	k, err := LoadKeyringFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if k.CurrentVersion() != 1 {
		t.Fatalf("generated current version %d, want 1", k.CurrentVersion())
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyringFile(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable file: %v, want a refusal", err)
	}
}

func TestLoadKeyringEnv(t *testing.T) {
	t.Setenv("TAPSWITCH_TEST_KEYS", "index: "+testKey(1)+"\nv1: "+testKey(2)+"\nv2: "+testKey(3)+"\n")
	k, err := LoadKeyringEnv("TAPSWITCH_TEST_KEYS")
	if err != nil || k.CurrentVersion() != 2 {
		t.Fatalf("LoadKeyringEnv = %v, %v", k, err)
	}
	if _, err := LoadKeyringEnv("TAPSWITCH_TEST_UNSET_KEYS"); err == nil {
		t.Fatal("LoadKeyringEnv accepted an unset variable")
	}
}

func FuzzParseKeyring(f *testing.F) {
	f.Add([]byte("index: " + testKey(1) + "\nv1: " + testKey(2) + "\n"))
	f.Add([]byte("# c\n\nindex: " + testKey(1) + "\nv9: " + testKey(2) + "\nv1: " + testKey(3)))
	f.Add([]byte("v1: abc\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := ParseKeyring(data)
		if err != nil {
			return
		}
		// A keyring that parses must seal and open under its current key.
		sealed := k.Seal([]byte("4111111111111111"), []byte("aad"))
		if got, err := k.Open(sealed, []byte("aad")); err != nil || string(got) != "4111111111111111" {
			t.Fatalf("round trip: %q, %v", got, err)
		}
	})
}

func TestTokenKey(t *testing.T) {
	key := func(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	k, err := ParseKeyring([]byte("index: " + key(1) + "\nv1: " + key(2) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := k.TokenKey("6299900000000001"), k.TokenKey("6299900000000002")
	if len(a) != 16 || string(a) == string(b) || string(a) != string(k.TokenKey("6299900000000001")) {
		t.Fatalf("token keys %x %x", a, b)
	}
}
