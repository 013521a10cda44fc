package acquirer

import (
	"github.com/tapswitch/tapswitch/internal/keyfile"
	"github.com/tapswitch/tapswitch/iso8583/mac"
)

// Keys are the acquirers' keys by institution ID. The switch holds all of
// them; an acquirer's host holds its own. They are kept apart from the
// vault's keys (docs/keys.md: keys by purpose).
type Keys map[string][]byte

// keyFile is the acquirer key file's format: "INSTITUTION: KEY", the key
// 32 bytes in standard base64 (internal/keyfile).
var keyFile = keyfile.Format{
	What:        "acquirer keys",
	IDName:      "INSTITUTION",
	ValidID:     institutionPattern.MatchString,
	CreateHint:  "for the acquirers of the registry with: tapctl keys init-acquirers",
	TempPattern: ".acquirer-keys-*",
}

// An acquirer key is a terminal-key master (iso8583/mac): the file's keys
// must be that size. This fails to compile if the two ever differ.
const _ = uint(mac.KeySize-keyfile.KeyBytes) + uint(keyfile.KeyBytes-mac.KeySize)

// ParseKeys reads a key file: one line per acquirer, "INSTITUTION: KEY",
// the key 32 bytes in standard base64; blank lines and lines starting with
// '#' are skipped.
func ParseKeys(text []byte) (Keys, error) {
	return keyFile.Parse(text)
}

// LoadKeysFile reads a key file, which only its owner may read or write.
func LoadKeysFile(path string) (Keys, error) {
	return keyFile.Load(path)
}

// GenerateKeysFile writes a new random key for each institution to path
// (mode 0600), atomically: a crash leaves the old file or the new one.
func GenerateKeysFile(path string, institutions []string) error {
	return keyFile.Generate(path, institutions)
}

// CreateKeysFile is GenerateKeysFile for a path that must not exist yet:
// it never replaces a file, whose keys every terminal of its acquirers
// may already hold.
func CreateKeysFile(path string, institutions []string) error {
	return keyFile.Create(path, institutions)
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
