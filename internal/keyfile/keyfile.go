// Package keyfile reads and writes the network's per-member key files: one
// line per member, "ID: KEY", the key 32 bytes in standard base64; blank
// lines and lines starting with '#' are skipped. The file is its owner's
// alone (mode 0600, refused otherwise), bounded in size, written whole
// (temporary file, fsync, rename or link) and, when created for keys that
// may already be in use, never replaced.
//
// The acquirers' keys (switch/acquirer) and the transit operators' master
// keys (settlement/transit) are such files; a Format says which, so their
// messages name their own file and the command that makes one.
package keyfile

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
)

// KeyBytes is the length of every key of a key file.
const KeyBytes = 32

// bytesMax bounds a key file: far more than a network's members.
const bytesMax = 1 << 20

// Format describes one kind of key file.
type Format struct {
	What    string // in messages and the file's first line, e.g. "acquirer keys"
	IDName  string // the ID's name in the line format, e.g. "INSTITUTION"
	ValidID func(string) bool
	// CreateHint ends the message for a missing file, before its path:
	// e.g. "for the acquirers of the registry with: tapctl keys init-acquirers".
	CreateHint string
	// TempPattern names the temporary file a write makes beside the file.
	TempPattern string
}

// Parse reads a key file's text.
func (f Format) Parse(text []byte) (map[string][]byte, error) {
	keys := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, b64, ok := strings.Cut(line, ":")
		id, b64 = strings.TrimSpace(id), strings.TrimSpace(b64)
		if !ok || !f.ValidID(id) {
			return nil, fmt.Errorf("%s line %d: want %s: BASE64-KEY", f.What, n, f.IDName)
		}
		key, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(key) != KeyBytes {
			return nil, fmt.Errorf("%s line %d (%s): the key must be %d bytes in base64", f.What, n, id, KeyBytes)
		}
		if _, dup := keys[id]; dup {
			return nil, fmt.Errorf("%s line %d: %s listed twice", f.What, n, id)
		}
		keys[id] = key
	}
	return keys, sc.Err()
}

// Load reads a key file, which only its owner may read or write.
func (f Format) Load(path string) (map[string][]byte, error) {
	st, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w; create one %s %s", f.What, err, f.CreateHint, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.What, err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s %s: mode %v, want 0600 (owner only)", f.What, path, st.Mode().Perm())
	}
	if st.Size() > bytesMax {
		return nil, fmt.Errorf("%s %s: over %d bytes", f.What, path, bytesMax)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.What, err)
	}
	keys, err := f.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}

// Generate writes a new random key for each ID to path (mode 0600),
// atomically: a crash leaves the old file or the new one.
func (f Format) Generate(path string, ids []string) error {
	return f.write(path, ids, os.Rename)
}

// Create is Generate for a path that must not exist yet: it never
// replaces a file, whose keys may already be in use. An existing file is
// an error wrapping fs.ErrExist.
func (f Format) Create(path string, ids []string) error {
	err := f.write(path, ids, os.Link) // link, unlike rename, fails on an existing path
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s %s: %w", f.What, path, fs.ErrExist)
	}
	return err
}

func (f Format) write(path string, ids []string, place func(from, to string) error) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# tapswitch %s: %s: base64 of %d bytes. Owner-only (0600).\n", f.What, f.IDName, KeyBytes)
	for _, id := range ids {
		key := make([]byte, KeyBytes)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s: %s\n", id, base64.StdEncoding.EncodeToString(key))
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), f.TempPattern)
	if err != nil {
		return fmt.Errorf("%s: %w", f.What, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", f.What, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("%s: %w", f.What, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%s: %w", f.What, err)
	}
	if err := place(tmp.Name(), path); err != nil {
		return fmt.Errorf("%s: %w", f.What, err)
	}
	return nil
}
