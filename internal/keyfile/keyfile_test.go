package keyfile

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var testFormat = Format{
	What:        "test keys",
	IDName:      "CODE",
	ValidID:     regexp.MustCompile(`^[0-9]{4}$`).MatchString,
	CreateHint:  "with: tapctl keys init-test",
	TempPattern: ".test-keys-*",
}

func TestParseAndLoad(t *testing.T) {
	k32 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	k16 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 16))
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keys, err := testFormat.Load(write("good", "# c\n\n0010: "+k32+"\n 0021 : "+k32+" \n", 0o600))
	if err != nil || len(keys) != 2 || len(keys["0021"]) != KeyBytes {
		t.Fatalf("%v %v", keys, err)
	}
	for name, c := range map[string]struct {
		text string
		mode os.FileMode
		why  string
	}{
		"readable by others": {"0010: " + k32 + "\n", 0o640, "want 0600"},
		"short key":          {"0010: " + k16 + "\n", 0o600, "test keys line 1 (0010): the key must be 32 bytes"},
		"not base64":         {"0010: !!!\n", 0o600, "32 bytes"},
		"bad ID":             {"10: " + k32 + "\n", 0o600, "want CODE: BASE64-KEY"},
		"no colon":           {"0010 " + k32 + "\n", 0o600, "want CODE: BASE64-KEY"},
		"twice":              {"0010: " + k32 + "\n0010: " + k32 + "\n", 0o600, "line 2: 0010 listed twice"},
		"too big":            {strings.Repeat("#", bytesMax+1), 0o600, "over"},
	} {
		_, err := testFormat.Load(write(name, c.text, c.mode))
		if err == nil || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%s: err %v, want one saying %q", name, err, c.why)
		}
		if err != nil && strings.Contains(err.Error(), k32) {
			t.Errorf("%s: the error shows a key", name)
		}
	}
	_, err = testFormat.Load(filepath.Join(dir, "missing"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "create one with: tapctl keys init-test "+filepath.Join(dir, "missing")) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestCreateNeverReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	if err := testFormat.Create(path, []string{"0010", "0755"}); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	keys, err := testFormat.Load(path)
	if err != nil || len(keys) != 2 || bytes.Equal(keys["0010"], keys["0755"]) {
		t.Fatalf("%d keys, %v", len(keys), err)
	}
	before, _ := os.ReadFile(path)
	if err := testFormat.Create(path, []string{"0010"}); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second create: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("create replaced the file")
	}
	if err := testFormat.Generate(path, []string{"0010"}); err != nil {
		t.Fatal(err)
	}
	if keys, _ := testFormat.Load(path); len(keys) != 1 || bytes.Equal(keys["0010"], before) {
		t.Fatal("generate did not replace the file")
	}
	if names, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".test-keys-*")); len(names) != 0 {
		t.Fatalf("temporary files left: %v", names)
	}
}
