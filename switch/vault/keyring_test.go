package vault

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"slices"
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
	text := "index: " + testKey(0xee) + "\ntoken-master: " + testKey(0x7a) + "\n"
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
		{"good", "# keys\n\nindex: " + testKey(1) + "\nv1: " + testKey(2) + "\n  v3 :  " + testKey(3) + "  \nv2: " + testKey(4) + "\ntoken-master: " + testKey(5) + "\n", 3, ""},
		{"missing token master", "index: " + testKey(1) + "\nv1: " + testKey(2), 0, `no token master key: the switch needs a line "token-master: <base64 of 32 bytes>"`},
		{"two token masters", "token-master: " + testKey(1) + "\ntoken-master: " + testKey(2) + "\nv1: " + testKey(3), 0, "line 2: a second token master key"},
		{"short token master", "index: " + testKey(1) + "\ntoken-master: " + short + "\nv1: " + testKey(1), 0, "line 2: token master key: decodes to 31 bytes"},
		{"missing index", "v1: " + testKey(2), 0, "no index key"},
		{"two index keys", "index: " + testKey(1) + "\nindex: " + testKey(2) + "\nv1: " + testKey(3), 0, "line 2: a second index key"},
		{"duplicate version", "index: " + testKey(1) + "\nv1: " + testKey(2) + "\nv1: " + testKey(3), 0, "line 3: data key v1 appears twice"},
		{"wrong length", "index: " + testKey(1) + "\nv1: " + short, 0, "line 2: data key v1: decodes to 31 bytes, want 32"},
		{"short index", "index: " + short + "\nv1: " + testKey(1), 0, "line 1: index key: decodes to 31 bytes"},
		{"bad base64", "index: " + testKey(1) + "\nv1: " + testKey(2)[:40] + "!!!!", 0, "line 2: data key v1: not valid standard base64"},
		{"no data key", "index: " + testKey(1) + "\ntoken-master: " + testKey(2) + "\n", 0, "no data key"},
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
	other, _ := ParseKeyring([]byte("index: " + testKey(0x11) + "\nv1: " + testKey(1) + "\ntoken-master: " + testKey(0x7a)))
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
	t.Setenv("TAPSWITCH_TEST_KEYS", "index: "+testKey(1)+"\nv1: "+testKey(2)+"\nv2: "+testKey(3)+"\ntoken-master: "+testKey(4)+"\n")
	k, err := LoadKeyringEnv("TAPSWITCH_TEST_KEYS")
	if err != nil || k.CurrentVersion() != 2 {
		t.Fatalf("LoadKeyringEnv = %v, %v", k, err)
	}
	if _, err := LoadKeyringEnv("TAPSWITCH_TEST_UNSET_KEYS"); err == nil {
		t.Fatal("LoadKeyringEnv accepted an unset variable")
	}
}

func FuzzParseKeyring(f *testing.F) {
	f.Add([]byte("index: " + testKey(1) + "\nv1: " + testKey(2) + "\ntoken-master: " + testKey(3) + "\n"))
	f.Add([]byte("# c\n\nindex: " + testKey(1) + "\nv9: " + testKey(2) + "\nv1: " + testKey(3) + "\ntoken-master: " + testKey(0x7a)))
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

// TestTokenKey: a token's key derives from the token master alone, not
// from the index key (which settlement-side mistakes or a PAN look-up
// service might hold) as it once did.
func TestTokenKey(t *testing.T) {
	k := testKeyring(t, 1)
	a, b := k.TokenKey("6299900000000001"), k.TokenKey("6299900000000002")
	if len(a) != 16 || string(a) == string(b) || string(a) != string(k.TokenKey("6299900000000001")) {
		t.Fatalf("token keys %x %x", a, b)
	}
	// What the index key would give: the old derivation, and the new one
	// keyed by the index key instead of the token master.
	index := bytes.Repeat([]byte{0xee}, keyBytes)
	oldMaster := hmac.New(sha256.New, index)
	oldMaster.Write([]byte("tapswitch token key master v1"))
	old := hmac.New(sha256.New, oldMaster.Sum(nil))
	old.Write([]byte("6299900000000001"))
	underIndex := hmac.New(sha256.New, index)
	underIndex.Write([]byte(tokenKeyLabel + "6299900000000001"))
	for name, other := range map[string][]byte{"old index-derived": old.Sum(nil)[:16], "keyed by the index key": underIndex.Sum(nil)[:16]} {
		if bytes.Equal(a, other) {
			t.Errorf("token key equals the %s key", name)
		}
	}
	otherIndex, err := ParseKeyring([]byte("index: " + testKey(0x11) + "\nv1: " + testKey(1) + "\ntoken-master: " + testKey(0x7a)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, otherIndex.TokenKey("6299900000000001")) {
		t.Error("the token key changes with the index key")
	}
	otherMaster, err := ParseKeyring([]byte("index: " + testKey(0xee) + "\nv1: " + testKey(1) + "\ntoken-master: " + testKey(0x7b)))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, otherMaster.TokenKey("6299900000000001")) {
		t.Error("the token key does not depend on the token master")
	}
}

// TestParseDataKeys: the key file of a host that only opens sealed PANs
// holds data keys and nothing else; the switch's keys in it are refused,
// by line, without repeating them.
func TestParseDataKeys(t *testing.T) {
	k, err := ParseDataKeys([]byte("# settle\nv1: " + testKey(1) + "\nv2: " + testKey(2) + "\n"))
	if err != nil || k.CurrentVersion() != 2 {
		t.Fatalf("ParseDataKeys = %v, %v", k, err)
	}
	for _, s := range []string{fmt.Sprint(k), fmt.Sprintf("%#v", k), fmt.Sprintf("%x", *k)} {
		if s != "DataKeys{versions [1 2]}" {
			t.Fatalf("data keys print as %q", s)
		}
	}
	sealed := testKeyring(t, 1, 2).Seal([]byte("4111111111111111"), []byte("aad"))
	if got, err := k.Open(sealed, []byte("aad")); err != nil || string(got) != "4111111111111111" {
		t.Fatalf("data keys open the switch's seal: %q, %v", got, err)
	}
	refused := map[string]string{
		"v1: " + testKey(1) + "\nindex: " + testKey(0xee):              "line 2: an index key; this key file is for data keys only",
		"v1: " + testKey(1) + "\n\ntoken-master: " + testKey(0x7a):     "line 3: a token master key; this key file is for data keys only",
		"index: " + testKey(0xee) + "\ntoken-master: " + testKey(0x7a): "line 1: an index key",
		"# nothing\n": "no data key",
	}
	for text, want := range refused {
		if _, err := ParseDataKeys([]byte(text)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseDataKeys(%q): %v, want an error containing %q", text, err, want)
		} else {
			assertNoKeyText(t, err.Error(), text)
		}
	}
}

// TestWriteDataKeysFile: settle's file made from the switch's holds its
// data keys, opens what the switch sealed, and has neither the index key
// nor the token master.
func TestWriteDataKeysFile(t *testing.T) {
	dir := t.TempDir()
	switchFile, settleFile := filepath.Join(dir, "switch.keys"), filepath.Join(dir, "settle.keys")
	if err := GenerateKeyringFile(switchFile); err != nil {
		t.Fatal(err)
	}
	f, _ := os.OpenFile(switchFile, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("v2: " + testKey(2) + "\n")
	f.Close()
	for range 2 { // the second replaces the first
		if err := WriteDataKeysFile(switchFile, settleFile); err != nil {
			t.Fatal(err)
		}
	}
	sw, err := LoadKeyringFile(switchFile)
	if err != nil {
		t.Fatal(err)
	}
	data, err := LoadDataKeysFile(settleFile)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(data.Versions(), []uint16{1, 2}) {
		t.Fatalf("settle's file has versions %v, want [1 2]", data.Versions())
	}
	if got, err := data.Open(sw.Seal([]byte("4111111111111111"), []byte("a")), []byte("a")); err != nil || string(got) != "4111111111111111" {
		t.Fatalf("settle's keys open the switch's seal: %q, %v", got, err)
	}
	text, _ := os.ReadFile(settleFile)
	if strings.Contains(string(text), "index:") || strings.Contains(string(text), "token-master:") {
		t.Fatalf("settle's key file holds a switch-only key:\n%s", text)
	}
	if info, _ := os.Stat(settleFile); info.Mode().Perm() != 0o600 {
		t.Fatalf("settle's key file mode %#o", info.Mode().Perm())
	}
	if _, err := LoadKeyringFile(settleFile); err == nil || !strings.Contains(err.Error(), "no index key") {
		t.Fatalf("the switch loading settle's file: %v, want a refusal", err)
	}
	if _, err := LoadDataKeysFile(switchFile); err == nil || !strings.Contains(err.Error(), "an index key") {
		t.Fatalf("settle loading the switch's file: %v, want a refusal", err)
	}
}

// TestMissingKeyFileNamesCommand: a key file that is not there is reported
// with the command that makes it.
func TestMissingKeyFileNamesCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vault.keys")
	if _, err := LoadKeyringFile(path); err == nil || !strings.HasSuffix(err.Error(), "; create one with: tapctl keys init "+path) {
		t.Errorf("switch key file: %v", err)
	}
	if _, err := LoadDataKeysFile(path); err == nil ||
		!strings.HasSuffix(err.Error(), "; write it from the switch's with: tapctl settle-keys -keys SWITCH_KEY_FILE -out "+path) {
		t.Errorf("settle key file: %v", err)
	}
}
