package acquirer

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tapswitch/tapswitch/iso8583/mac"
)

// keysBytesMax bounds a key file: far more than a network's acquirers.
const keysBytesMax = 1 << 20

// Keys are the acquirers' keys by institution ID. The switch holds all of
// them; an acquirer's host holds its own. They are kept apart from the
// vault's keys (docs/keys.md: keys by purpose).
type Keys map[string][]byte

// ParseKeys reads a key file: one line per acquirer, "INSTITUTION: KEY",
// the key 32 bytes in standard base64; blank lines and lines starting with
// '#' are skipped.
func ParseKeys(text []byte) (Keys, error) {
	keys := Keys{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, b64, ok := strings.Cut(line, ":")
		id, b64 = strings.TrimSpace(id), strings.TrimSpace(b64)
		if !ok || !institutionPattern.MatchString(id) {
			return nil, fmt.Errorf("acquirer keys line %d: want INSTITUTION: BASE64-KEY", n)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != mac.KeySize {
			return nil, fmt.Errorf("acquirer keys line %d (%s): the key must be %d bytes in base64", n, id, mac.KeySize)
		}
		if _, dup := keys[id]; dup {
			return nil, fmt.Errorf("acquirer keys line %d: %s listed twice", n, id)
		}
		keys[id] = key
	}
	return keys, sc.Err()
}

// LoadKeysFile reads a key file, which only its owner may read or write.
func LoadKeysFile(path string) (Keys, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("acquirer keys: %w; create one for the acquirers of the registry with: tapctl keys init-acquirers %s", err, path)
	}
	if err != nil {
		return nil, fmt.Errorf("acquirer keys: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("acquirer keys %s: mode %v, want 0600 (owner only)", path, st.Mode().Perm())
	}
	if st.Size() > keysBytesMax {
		return nil, fmt.Errorf("acquirer keys %s: over %d bytes", path, keysBytesMax)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("acquirer keys: %w", err)
	}
	keys, err := ParseKeys(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// GenerateKeysFile writes a new random key for each institution to path
// (mode 0600), atomically: a crash leaves the old file or the new one.
func GenerateKeysFile(path string, institutions []string) error {
	return writeKeysFile(path, institutions, os.Rename)
}

// CreateKeysFile is GenerateKeysFile for a path that must not exist yet:
// it never replaces a file, whose keys every terminal of its acquirers
// may already hold.
func CreateKeysFile(path string, institutions []string) error {
	err := writeKeysFile(path, institutions, os.Link) // link, unlike rename, fails on an existing path
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("acquirer keys %s: %w", path, fs.ErrExist) // its acquirers' terminals may hold keys derived from it
	}
	return err
}

func writeKeysFile(path string, institutions []string, place func(from, to string) error) error {
	var b strings.Builder
	b.WriteString("# tapswitch acquirer keys: INSTITUTION: base64 of 32 bytes. Owner-only (0600).\n")
	for _, id := range institutions {
		key := make([]byte, mac.KeySize)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s: %s\n", id, base64.StdEncoding.EncodeToString(key))
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".acquirer-keys-*")
	if err != nil {
		return fmt.Errorf("acquirer keys: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return fmt.Errorf("acquirer keys: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("acquirer keys: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("acquirer keys: %w", err)
	}
	if err := place(tmp.Name(), path); err != nil {
		return fmt.Errorf("acquirer keys: %w", err)
	}
	return nil
}

// TerminalKey is the key of terminal terminalID of acquirer institution,
// as the acquirer's host derives it; false when the acquirer has no key.
func (k Keys) TerminalKey(institution, terminalID string) ([]byte, bool) {
	ak, ok := k[institution]
	if !ok {
		return nil, false
	}
	return mac.TerminalKey(ak, terminalID), true
}
