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
	"io/fs"
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

// DataKeys are the versioned AES-256-GCM keys that seal PANs, the only
// keys a host that opens sealed PANs without looking them up needs
// (settle, which writes issuer clearing files). Data keys rotate by adding
// a higher version: new seals use it, old blobs still open under the
// version they name. DataKeys are immutable and safe for concurrent use,
// and never print their keys: every fmt verb shows only the versions.
type DataKeys struct {
	data     map[uint16]cipher.AEAD
	versions []uint16 // ascending; the last one is current
}

// Keyring is the switch's keys, one per purpose (docs/keys.md): the data
// keys that seal PANs, the HMAC-SHA256 index key of the look-ups by PAN,
// and the token master key from which each token's cryptogram key derives.
// The index key and the token master never rotate: every PAN index entry
// is a hash under the first, every phone holds a key derived from the
// second. A Keyring is immutable and safe for concurrent use, and never
// prints its keys.
type Keyring struct {
	DataKeys
	index       []byte
	tokenMaster []byte
}

// Labels of a key file's lines.
const (
	labelIndex       = "index"
	labelTokenMaster = "token-master"
)

// keyFile is a key file's lines as read, before a role's loader decides
// which of them it needs and which it must not have. The line numbers say
// where the index key and the token master were, 0 when absent.
type keyFile struct {
	data                       DataKeys
	index, tokenMaster         []byte
	indexLine, tokenMasterLine int
}

// ParseKeyring reads the switch's key file (package doc): it must hold the
// index key, the token master and at least one data key. Its errors say
// which line is missing and how to add it.
func ParseKeyring(text []byte) (*Keyring, error) {
	f, err := parseKeyFile(text)
	if err != nil {
		return nil, err
	}
	switch {
	case f.index == nil:
		return nil, errors.New(`keyring: no index key: the switch needs a line "index: <base64 of 32 bytes>", ` +
			`the one its vault was built with (a new vault: head -c 32 /dev/urandom | base64); docs/keys.md`)
	case f.tokenMaster == nil:
		return nil, errors.New(`keyring: no token master key: the switch needs a line "token-master: <base64 of 32 bytes>"; ` +
			`add one with: echo "token-master: $(head -c 32 /dev/urandom | base64)" >> KEYFILE ` +
			`(every token's cryptogram key derives from it: docs/keys.md)`)
	case len(f.data.versions) == 0:
		return nil, errNoDataKey
	}
	return &Keyring{DataKeys: f.data, index: f.index, tokenMaster: f.tokenMaster}, nil
}

var errNoDataKey = errors.New(`keyring: no data key (want at least one line "v1: <base64 of 32 bytes>")`)

// ParseDataKeys reads the key file of a host that only opens sealed PANs
// (settle): data key lines only. It refuses a file holding the index key or
// the token master, rather than ignoring them: the point of that host's
// file is that those keys are not on the host, and a copy of the switch's
// file would otherwise go unnoticed.
func ParseDataKeys(text []byte) (*DataKeys, error) {
	f, err := parseKeyFile(text)
	if err != nil {
		return nil, err
	}
	const only = "; this key file is for data keys only (v<N>: lines): keep the index and token-master lines on the switch and delete them here (docs/keys.md)"
	switch {
	case f.index != nil:
		return nil, fmt.Errorf("keyring line %d: an index key%s", f.indexLine, only)
	case f.tokenMaster != nil:
		return nil, fmt.Errorf("keyring line %d: a token master key%s", f.tokenMasterLine, only)
	case len(f.data.versions) == 0:
		return nil, errNoDataKey
	}
	return &f.data, nil
}

func parseKeyFile(text []byte) (keyFile, error) {
	f := keyFile{data: DataKeys{data: make(map[uint16]cipher.AEAD)}}
	sc := bufio.NewScanner(bytes.NewReader(text))
	sc.Buffer(make([]byte, 0, 256), keyringBytesMax)
	for line := 1; sc.Scan(); line++ {
		if err := f.parseLine(sc.Text(), line); err != nil {
			return keyFile{}, fmt.Errorf("keyring line %d: %w", line, err)
		}
	}
	if err := sc.Err(); err != nil {
		return keyFile{}, fmt.Errorf("keyring: %w", err)
	}
	slices.Sort(f.data.versions)
	return f, nil
}

// parseLine adds the key on one line. Its errors name the label at most,
// never the key text: these errors end up in logs.
func (f *keyFile) parseLine(text string, line int) error {
	text = strings.TrimSpace(text)
	if text == "" || text[0] == '#' {
		return nil
	}
	label, value, ok := strings.Cut(text, ":")
	if !ok {
		return errors.New(`want "index: <base64>", "token-master: <base64>" or "v<N>: <base64>"`)
	}
	label, value = strings.TrimSpace(label), strings.TrimSpace(value)
	switch label {
	case labelIndex:
		return addSingle(&f.index, &f.indexLine, "index key", value, line)
	case labelTokenMaster:
		return addSingle(&f.tokenMaster, &f.tokenMasterLine, "token master key", value, line)
	}
	version, err := parseVersion(label)
	if err != nil {
		return err
	}
	if _, dup := f.data.data[version]; dup {
		return fmt.Errorf("data key v%d appears twice", version)
	}
	key, err := decodeKey(value)
	if err != nil {
		return fmt.Errorf("data key v%d: %w", version, err)
	}
	aead, err := newAEAD(key)
	if err != nil {
		return fmt.Errorf("data key v%d: %w", version, err)
	}
	f.data.data[version] = aead
	f.data.versions = append(f.data.versions, version)
	return nil
}

// addSingle stores a key of which a file holds at most one.
func addSingle(dst *[]byte, at *int, name, value string, line int) error {
	if *dst != nil {
		return fmt.Errorf("a second %s; there must be exactly one", name)
	}
	key, err := decodeKey(value)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	*dst, *at = key, line
	return nil
}

const labelsWanted = `label must be "index", "token-master" or "v<N>" with N in 1..65535`

func parseVersion(label string) (uint16, error) {
	if len(label) < 2 || label[0] != 'v' {
		return 0, errors.New(labelsWanted)
	}
	n, err := strconv.ParseUint(label[1:], 10, 16)
	if err != nil || n == 0 {
		return 0, errors.New(labelsWanted)
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

// LoadKeyringFile reads the switch's key file (ParseKeyring). It refuses a
// file that group or others may read or write, as ssh does for private
// keys: a vault key readable by every local account defeats encryption at
// rest.
func LoadKeyringFile(path string) (*Keyring, error) {
	text, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w; create one with: tapctl keys init %s", err, path)
	}
	if err != nil {
		return nil, err
	}
	k, err := ParseKeyring(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// LoadDataKeysFile reads the key file of a host that opens sealed PANs
// only (ParseDataKeys), with LoadKeyringFile's checks of the file.
func LoadDataKeysFile(path string) (*DataKeys, error) {
	text, err := readKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w; write it from the switch's with: tapctl settle-keys -keys SWITCH_KEY_FILE -out %s", err, path)
	}
	if err != nil {
		return nil, err
	}
	k, err := ParseDataKeys(text)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

func readKeyFile(path string) ([]byte, error) {
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
	return data, nil
}

// LoadKeyringEnv reads the switch's key file text from the environment
// variable name, for deployments that inject secrets that way.
func LoadKeyringEnv(name string) (*Keyring, error) {
	text, err := readKeyEnv(name)
	if err != nil {
		return nil, err
	}
	k, err := ParseKeyring(text)
	if err != nil {
		return nil, fmt.Errorf("environment variable %s: %w", name, err)
	}
	return k, nil
}

// LoadDataKeysEnv is LoadDataKeysFile from an environment variable.
func LoadDataKeysEnv(name string) (*DataKeys, error) {
	text, err := readKeyEnv(name)
	if err != nil {
		return nil, err
	}
	k, err := ParseDataKeys(text)
	if err != nil {
		return nil, fmt.Errorf("environment variable %s: %w", name, err)
	}
	return k, nil
}

func readKeyEnv(name string) ([]byte, error) {
	text, ok := os.LookupEnv(name)
	if !ok || strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("keyring: environment variable %s is not set", name)
	}
	if len(text) > keyringBytesMax {
		return nil, fmt.Errorf("keyring: environment variable %s is larger than %d bytes", name, keyringBytesMax)
	}
	return []byte(text), nil
}

// GenerateKeyringFile writes a new switch key file with a fresh index key,
// token master and data key v1. It never overwrites: losing the keys of a
// live vault loses every PAN in it and every token's cryptogram key.
func GenerateKeyringFile(path string) error {
	var index, master, v1 [keyBytes]byte
	rand.Read(index[:]) // crypto/rand.Read never fails; it crashes the program instead
	rand.Read(master[:])
	rand.Read(v1[:])
	text := "# tapswitch switch keys (docs/keys.md). Keep it mode 0600 and back it up:\n" +
		"# without it the vault's PANs are lost. Rotate by adding v2, v3, ...;\n" +
		"# never change index or token-master. settle gets the v<N> lines only.\n" +
		"index: " + base64.StdEncoding.EncodeToString(index[:]) + "\n" +
		"token-master: " + base64.StdEncoding.EncodeToString(master[:]) + "\n" +
		"v1: " + base64.StdEncoding.EncodeToString(v1[:]) + "\n"
	return writeKeyFile(path, []byte(text), os.O_EXCL)
}

// WriteDataKeysFile writes to path the data key lines of the switch's key
// file at from, and nothing else: the key file of a host that opens sealed
// PANs only (settle). It replaces path atomically (a rotation adds a
// version to it), mode 0600, and checks both files parse for their role.
func WriteDataKeysFile(from, path string) error {
	text, err := readKeyFile(from)
	if err != nil {
		return err
	}
	if _, err := ParseKeyring(text); err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	out := []byte("# tapswitch data keys only (docs/keys.md): for settle, which opens sealed\n" +
		"# PANs. Never add the switch's index or token-master lines here.\n")
	for line := range strings.Lines(string(text)) {
		label, _, ok := strings.Cut(strings.TrimSpace(line), ":")
		if _, err := parseVersion(strings.TrimSpace(label)); ok && err == nil {
			out = append(out, strings.TrimSpace(line)+"\n"...)
		}
	}
	if _, err := ParseDataKeys(out); err != nil {
		return fmt.Errorf("data keys of %s: %w", from, err)
	}
	tmp := path + ".tmp"
	os.Remove(tmp)
	if err := writeKeyFile(tmp, out, os.O_EXCL); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("keyring %s: %w", path, err)
	}
	return nil
}

// writeKeyFile creates path with mode 0600 and text, synced; on failure it
// leaves nothing.
func writeKeyFile(path string, text []byte, flag int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|flag, 0o600)
	if err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	_, err = f.Write(text)
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
func (k *DataKeys) CurrentVersion() uint16 { return k.versions[len(k.versions)-1] }

// Seal encrypts plaintext under the current data key, binding it to aad:
//
//	+------------+-----------------+---------------------------+
//	| version BE | nonce           | ciphertext | GCM tag      |
//	| 2 bytes    | 12 bytes random | len(plaintext) | 16 bytes |
//	+------------+-----------------+---------------------------+
//
// The version is not authenticated itself; altering it picks a different key
// (or none), under which the tag fails.
func (k *DataKeys) Seal(plaintext, aad []byte) []byte {
	v := k.CurrentVersion()
	out := make([]byte, sealHeaderBytes, sealOverheadBytes+len(plaintext))
	binary.BigEndian.PutUint16(out, v)
	return k.data[v].Seal(out, nil, plaintext, aad)
}

// Open decrypts a blob made by Seal under any version this keyring still
// holds. It fails for a short blob, an unknown version, a different aad or
// any altered byte.
func (k *DataKeys) Open(sealed, aad []byte) ([]byte, error) {
	return k.openAppend(nil, sealed, aad)
}

// openAppend is Open appending to dst, so the vault's hot path can decrypt
// into a buffer it already has.
func (k *DataKeys) openAppend(dst, sealed, aad []byte) ([]byte, error) {
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

// String describes the keys without any key material. It and Format have
// value receivers so that a copied DataKeys or Keyring cannot print its
// keys either.
func (k DataKeys) String() string {
	return fmt.Sprintf("DataKeys{versions %v}", k.versions)
}

// Format makes every verb, %#v and %x included, print String.
func (k DataKeys) Format(f fmt.State, verb rune) { io.WriteString(f, k.String()) }

// String describes the keyring without any key material.
func (k Keyring) String() string {
	return fmt.Sprintf("Keyring{data key versions %v, index key, token master}", k.versions)
}

// Format makes every verb, %#v and %x included, print String.
func (k Keyring) Format(f fmt.State, verb rune) { io.WriteString(f, k.String()) }

// tokenKeyBytes is the length of a token's cryptogram key (AES-128 sized).
const tokenKeyBytes = 16

// tokenKeyLabel separates the token key derivation from any other use of
// the token master, and names its version.
const tokenKeyLabel = "tapswitch token key v2\x00"

// TokenKey is token's own cryptogram key, derived from the token master:
// every tap's ARQC is a MAC under it, computed by the phone's secure
// element and recomputed by the switch.
//
//	token key = HMAC-SHA256(token master, "tapswitch token key v2" 0x00 token)[:16]
//
// The token master never rotates, so a token keeps its key for its whole
// life. It is its own key, not derived from the index key as before (v1):
// the index key's hashes are what every PAN look-up needs, and a key that
// opens one purpose must not open the other (docs/keys.md).
func (k *Keyring) TokenKey(token string) []byte {
	m := hmac.New(sha256.New, k.tokenMaster)
	io.WriteString(m, tokenKeyLabel)
	io.WriteString(m, token)
	return m.Sum(nil)[:tokenKeyBytes]
}

// tokenMasterCheck is what the vault stores to recognise the token master
// it first saw (a MAC of a fixed label, not a token key).
func (k *Keyring) tokenMasterCheck() []byte {
	m := hmac.New(sha256.New, k.tokenMaster)
	io.WriteString(m, "tapswitch token master check")
	return m.Sum(nil)
}
