package vault

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

const (
	keyBytes = 32 // AES-256 data keys and the HMAC-SHA256 index key alike
	// keyringBytesMax bounds what LoadKeyringFile and LoadKeyringEnv read: a
	// key file with thousands of versions is a mistake, not a keyring.
	keyringBytesMax = 64 << 10
	// sealHeaderBytes is the key version in front of every sealed blob.
	sealHeaderBytes = 2
	// sealOverheadBytes is what Seal adds to the plaintext: version, nonce
	// and GCM tag.
	sealOverheadBytes = sealHeaderBytes + 12 + 16
)

// Keyring holds the vault's keys: versioned AES-256-GCM data keys that seal
// PANs, and one HMAC-SHA256 index key for look-ups by PAN. The index key
// never rotates, because every PAN index entry in the vault is a hash under
// it; rotating it would mean rewriting the whole index in one go. Data keys
// rotate by adding a higher version: new seals use it, old blobs still open
// under the version they name. A Keyring is immutable and safe for
// concurrent use.
//
// A Keyring never prints its keys: every fmt verb shows only the versions.
type Keyring struct {
	index    []byte
	data     map[uint16]cipher.AEAD
	versions []uint16 // ascending; the last one is current
}

// ParseKeyring reads the key file text described in the package doc.
func ParseKeyring(data []byte) (*Keyring, error) {
	k := &Keyring{data: make(map[uint16]cipher.AEAD)}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 256), keyringBytesMax)
	for line := 1; sc.Scan(); line++ {
		if err := k.parseLine(sc.Text()); err != nil {
			return nil, fmt.Errorf("keyring line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if k.index == nil {
		return nil, errors.New("keyring: no index key (want a line \"index: <base64 of 32 bytes>\")")
	}
	if len(k.versions) == 0 {
		return nil, errors.New("keyring: no data key (want at least one line \"v1: <base64 of 32 bytes>\")")
	}
	slices.Sort(k.versions)
	return k, nil
}

// parseLine adds the key on one line. Its errors name the label at most,
// never the key text: these errors end up in logs.
func (k *Keyring) parseLine(text string) error {
	text = strings.TrimSpace(text)
	if text == "" || text[0] == '#' {
		return nil
	}
	label, value, ok := strings.Cut(text, ":")
	if !ok {
		return errors.New(`want "index: <base64>" or "v<N>: <base64>"`)
	}
	label = strings.TrimSpace(label)
	if label == "index" {
		return k.addIndex(strings.TrimSpace(value))
	}
	version, err := parseVersion(label)
	if err != nil {
		return err
	}
	if _, dup := k.data[version]; dup {
		return fmt.Errorf("data key v%d appears twice", version)
	}
	key, err := decodeKey(strings.TrimSpace(value))
	if err != nil {
		return fmt.Errorf("data key v%d: %w", version, err)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return fmt.Errorf("data key v%d: %w", version, err)
	}
	k.data[version] = aead
	k.versions = append(k.versions, version)
	return nil
}

func (k *Keyring) addIndex(value string) error {
	if k.index != nil {
		return errors.New("a second index key; there must be exactly one")
	}
	key, err := decodeKey(value)
	if err != nil {
		return fmt.Errorf("index key: %w", err)
	}
	k.index = key
	return nil
}

func parseVersion(label string) (uint16, error) {
	if len(label) < 2 || label[0] != 'v' {
		return 0, errors.New(`label must be "index" or "v<N>" with N in 1..65535`)
	}
	n, err := strconv.ParseUint(label[1:], 10, 16)
	if err != nil || n == 0 {
		return 0, errors.New(`label must be "index" or "v<N>" with N in 1..65535`)
	}
	return uint16(n), nil
}

func decodeKey(value string) ([]byte, error) {
	key, err := base64.StdEncoding.Strict().DecodeString(value)
	if err != nil {
		// base64's own error names an offset only, but we say less still.
		return nil, errors.New("not valid standard base64")
	}
	if len(key) != keyBytes {
		return nil, fmt.Errorf("decodes to %d bytes, want %d", len(key), keyBytes)
	}
	return key, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	// The random-nonce GCM prepends its 12-byte nonce to the ciphertext,
	// which is exactly the layout Seal documents.
	return cipher.NewGCMWithRandomNonce(block)
}

// LoadKeyringFile reads a key file. It refuses a file that group or others
// may read or write, as ssh does for private keys: a vault key readable by
// every local account defeats encryption at rest.
func LoadKeyringFile(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keyring: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("keyring %s: not a regular file", path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("keyring %s: mode %#o lets group or others at the keys; chmod 600 it", path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, keyringBytesMax+1))
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	if len(data) > keyringBytesMax {
		return nil, fmt.Errorf("keyring %s: larger than %d bytes", path, keyringBytesMax)
	}
	k, err := ParseKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadKeyringEnv reads the key file text from the environment variable name,
// for deployments that inject secrets that way.
func LoadKeyringEnv(name string) (*Keyring, error) {
	text, ok := os.LookupEnv(name)
	if !ok || strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("keyring: environment variable %s is not set", name)
	}
	if len(text) > keyringBytesMax {
		return nil, fmt.Errorf("keyring: environment variable %s is larger than %d bytes", name, keyringBytesMax)
	}
	k, err := ParseKeyring([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("environment variable %s: %w", name, err)
	}
	return k, nil
}

// GenerateKeyringFile writes a new key file with a fresh index key and data
// key v1. It never overwrites: losing the index or data keys of a live vault
// loses every PAN in it.
func GenerateKeyringFile(path string) error {
	var index, v1 [keyBytes]byte
	rand.Read(index[:]) // crypto/rand.Read never fails; it crashes the program instead
	rand.Read(v1[:])
	text := "# tapswitch vault keyring. Keep it mode 0600 and back it up: without it\n" +
		"# the vault's PANs are lost. Rotate by adding v2, v3, ...; never change index.\n" +
		"index: " + base64.StdEncoding.EncodeToString(index[:]) + "\n" +
		"v1: " + base64.StdEncoding.EncodeToString(v1[:]) + "\n"
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	_, err = f.WriteString(text)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("keyring %s: %w", path, err)
	}
	return nil
}

// CurrentVersion is the data key version Seal uses: the highest in the file.
func (k *Keyring) CurrentVersion() uint16 { return k.versions[len(k.versions)-1] }

// Seal encrypts plaintext under the current data key, binding it to aad:
//
//	+------------+-----------------+---------------------------+
//	| version BE | nonce           | ciphertext | GCM tag      |
//	| 2 bytes    | 12 bytes random | len(plaintext) | 16 bytes |
//	+------------+-----------------+---------------------------+
//
// The version is not authenticated itself; altering it picks a different key
// (or none), under which the tag fails.
func (k *Keyring) Seal(plaintext, aad []byte) []byte {
	v := k.CurrentVersion()
	out := make([]byte, sealHeaderBytes, sealOverheadBytes+len(plaintext))
	binary.BigEndian.PutUint16(out, v)
	return k.data[v].Seal(out, nil, plaintext, aad)
}

// Open decrypts a blob made by Seal under any version this keyring still
// holds. It fails for a short blob, an unknown version, a different aad or
// any altered byte.
func (k *Keyring) Open(sealed, aad []byte) ([]byte, error) {
	return k.openAppend(nil, sealed, aad)
}

// openAppend is Open appending to dst, so the vault's hot path can decrypt
// into a buffer it already has.
func (k *Keyring) openAppend(dst, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < sealOverheadBytes {
		return nil, fmt.Errorf("vault: sealed blob is %d bytes, shorter than the %d of overhead", len(sealed), sealOverheadBytes)
	}
	v := binary.BigEndian.Uint16(sealed)
	aead, ok := k.data[v]
	if !ok {
		return nil, fmt.Errorf("vault: sealed under data key v%d, which the keyring does not hold", v)
	}
	out, err := aead.Open(dst, nil, sealed[sealHeaderBytes:], aad)
	if err != nil {
		return nil, fmt.Errorf("vault: sealed blob under data key v%d failed authentication", v)
	}
	return out, nil
}

// IndexHash is the keyed hash that stands for a PAN in index keys. Without
// the index key it cannot be reversed by hashing every PAN of a BIN, which a
// plain SHA-256 of a 16-digit number would allow.
func (k *Keyring) IndexHash(pan string) []byte {
	m := hmac.New(sha256.New, k.index)
	io.WriteString(m, pan)
	return m.Sum(nil)
}

// String describes the keyring without any key material. It and Format have
// value receivers so that a copied Keyring cannot print its keys either.
func (k Keyring) String() string {
	return fmt.Sprintf("Keyring{data key versions %v}", k.versions)
}

// Format makes every verb, %#v and %x included, print String.
func (k Keyring) Format(f fmt.State, verb rune) { io.WriteString(f, k.String()) }

// tokenKeyBytes is the length of a token's cryptogram key (AES-128 sized).
const tokenKeyBytes = 16

// TokenKey is token's own cryptogram key, derived from the network master
// key: every tap's ARQC is a MAC under it, computed by the phone's secure
// element and recomputed by the switch. The master key is derived from the
// index key with its own label, so it shares the index key's property of
// never rotating: a token keeps its key for its whole life.
func (k *Keyring) TokenKey(token string) []byte {
	master := hmac.New(sha256.New, k.index)
	master.Write([]byte("tapswitch token key master v1"))
	m := hmac.New(sha256.New, master.Sum(nil))
	m.Write([]byte(token))
	return m.Sum(nil)[:tokenKeyBytes]
}
