package vault

import (
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/pebblelog"
	"github.com/tapswitch/tapswitch/switch/replica"
)

// Status is where a token is in its life. Deleted is final.
type Status string

const (
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
	StatusDeleted   Status = "deleted"
)

// Domain holds restrictions on where a token may be used.
type Domain struct {
	ContactlessOnly bool
}

// Token is one vault entry: a token, the card it stands for and its binding.
type Token struct {
	Token         iso8583.PAN // Luhn-valid number from the network's token BIN ranges
	PAN           iso8583.PAN // the real card number; encrypted at rest
	CardExpiry    string      // YYMM of the real card
	TokenExpiry   string      // YYMM of the token
	Status        Status
	DeviceID      string
	WalletAccount string
	RequestorID   string // token requestor (wallet provider) ID, 11 digits
	Domain        Domain
	CreatedAt     time.Time
}

var (
	// ErrNotFound is returned for a token the vault does not hold.
	ErrNotFound = errors.New("vault: token not found")
	// ErrInvalid wraps every rejection of a caller's input.
	ErrInvalid = errors.New("vault: invalid")
	// ErrCorrupt wraps every stored record that fails its checks on read:
	// a bug or a damaged disk, never bad input. Alert on it.
	ErrCorrupt = errors.New("vault: corrupt record")
)

const (
	// tokensPerDeviceMax and tokensPerPANMax bound the index scans. Put
	// refuses a token past them, so SuspendDevice always fits in one batch.
	// Deleted tokens keep their index entries and count.
	tokensPerDeviceMax = 256
	tokensPerPANMax    = 1024

	keyCheckKey   = "m/keycheck"
	keyCheckProbe = "tapswitch vault key check"
	// tokenMasterCheckKey holds a MAC under the token master the vault
	// first opened with, so that another one is refused at start instead
	// of turning every tap into a 59.
	tokenMasterCheckKey = "m/tokenmaster"
	// getBufBytes holds a record key and every clear field of a token.
	getBufBytes = 2 + panDigitsMax + deviceIDBytesMax + walletAccountBytesMax +
		requestorIDBytes + 4 + 4 + panDigitsMax
)

// Vault is the Pebble-backed token store. Reads run concurrently; writes
// are serialized by one mutex, because Put and SetStatus read a record
// before rewriting it and the indexes must match what was read. Writes are
// provisioning and lifecycle events, far rarer than authorizations.
//
// The keyring is swapped whole by SetKeyring (see rotate.go), so readers
// load it once per call and never take a lock for it.
//
// Close only after every other call has returned: Pebble panics on use after
// Close. Close does stop a running Rekey itself.
type Vault struct {
	db      *pebble.DB
	keys    atomic.Pointer[Keyring]
	writeMu sync.Mutex
	rekey   rekeyGuard
	// log, in cluster mode, is where the records' writes go; every node's
	// follower applies them to its own db (package replica). nil on one
	// node: writes commit to db.
	log replica.Log
	// base is the log position a write's reads were made at (guarded by
	// writeMu; see lockWrite).
	base uint64
}

// conflictTriesMax bounds the runs of one write that lose to writes of
// other nodes (replica.ErrConflict): each loss means another node's write
// went in, so the bound is only reached under a storm of writes to one
// vault; the write then fails.
const conflictTriesMax = 32

// Open opens or creates the vault in dir and checks that keys is the
// keyring this vault was written with.
func Open(dir string, keys *Keyring) (*Vault, error) {
	return OpenReplica(dir, keys, nil)
}

// OpenReplica opens the vault in dir as a node's copy of a replicated
// vault: attach (nil: none, as Open) connects db to the log, which catches
// it up before the keyring is checked. The keyring's own records (m/) stay
// node-local: every node checks its own key file against its own copy.
func OpenReplica(dir string, keys *Keyring, attach replica.Open) (*Vault, error) {
	if keys == nil {
		return nil, errors.New("vault: nil keyring")
	}
	// The WAL is on by default and every write here commits with Sync.
	db, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: pebblelog.Quiet})
	if err != nil {
		return nil, fmt.Errorf("vault: open %s: %w", dir, err)
	}
	v := &Vault{db: db}
	if attach != nil {
		if v.log, err = attach(db); err != nil {
			db.Close()
			return nil, fmt.Errorf("vault %s: %w", dir, err)
		}
	}
	if err := v.admit(keys); err != nil {
		v.closeLog()
		db.Close()
		return nil, fmt.Errorf("vault %s: %w", dir, err)
	}
	v.keys.Store(keys)
	if attach != nil {
		if err := v.checkSharedKeys(); err != nil {
			v.closeLog()
			db.Close()
			return nil, fmt.Errorf("vault %s: %w", dir, err)
		}
	}
	return v, nil
}

// checkSharedKeys opens the first token record, which another node may
// have sealed: the key check probe (m/keycheck) is node-local, so only a
// record tells a key file that differs from the other nodes' at start-up
// rather than at every tap.
func (v *Vault) checkSharedKeys() error {
	it, err := v.recordIter(recordKey(""))
	if err != nil {
		return err
	}
	var token string
	if it.First() {
		token = string(it.Key()[len("t/"):])
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil || token == "" {
		return err
	}
	if _, err := v.Get(token); err != nil {
		return fmt.Errorf("the keyring cannot open the records of the replicated vault; every node needs the same key file: %w", err)
	}
	return nil
}

// Close stops a running Rekey, waits for it to return, and closes the store.
func (v *Vault) Close() error {
	v.rekey.close()
	v.closeLog()
	return v.db.Close()
}

func (v *Vault) closeLog() {
	if v.log != nil {
		v.log.Close()
	}
}

// lockWrite takes writeMu and notes the log position the write's reads
// will see at least: its commit is refused if another node's batch came
// after it, whatever the write read.
func (v *Vault) lockWrite() {
	v.writeMu.Lock()
	if v.log != nil {
		v.base = v.log.Applied()
	}
}

// retryConflicts runs write until it does not lose to another node's
// write, at most conflictTriesMax times. On one node it runs it once.
func retryConflicts(write func() error) error {
	var err error
	for try := range conflictTriesMax {
		if err = write(); !errors.Is(err, replica.ErrConflict) {
			return err
		}
		replica.Backoff(try)
	}
	return fmt.Errorf("vault: %d tries lost to other nodes' writes: %w", conflictTriesMax, err)
}

// Keys is the keyring the vault uses now. Code that seals PANs outside the
// vault (the journal's entries) should call it per use rather than keep the
// keyring it was given at start, so that it seals under the current version
// after a SetKeyring.
func (v *Vault) Keys() *Keyring { return v.keys.Load() }

// checkKeys compares the keyring with a probe sealed and hashed when the
// vault was created, so a wrong key file fails at start-up instead of at
// every authorization, or, for the index key, silently: a wrong index key
// makes every PAN look-up find nothing. It reports whether the probe must be
// (re)written under k's current data key, so that an old version can be
// retired after re-encryption.
func (v *Vault) checkKeys(k *Keyring) (reseal bool, err error) {
	key := []byte(keyCheckKey)
	wantHash := k.IndexHash(keyCheckProbe)
	val, closer, err := v.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	hash, sealed := val[:min(len(val), len(wantHash))], val[min(len(val), len(wantHash)):]
	probe, openErr := k.Open(sealed, key)
	switch {
	case !hmac.Equal(hash, wantHash):
		return false, errors.New("the keyring's index key is not the one this vault was built with")
	case openErr != nil:
		return false, fmt.Errorf("the keyring cannot open this vault's data: %w", openErr)
	case string(probe) != keyCheckProbe:
		return false, fmt.Errorf("%w: key check probe", ErrCorrupt)
	}
	return binary.BigEndian.Uint16(sealed) != k.CurrentVersion(), nil
}

// checkTokenMaster compares the keyring's token master with the one the
// vault recorded. record reports there is none recorded yet (a new vault,
// or one from before the token master existed), to be written by admit.
func (v *Vault) checkTokenMaster(k *Keyring) (record bool, err error) {
	val, closer, err := v.db.Get([]byte(tokenMasterCheckKey))
	if errors.Is(err, pebble.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer closer.Close()
	if !hmac.Equal(val, k.tokenMasterCheck()) {
		return false, errors.New("the keyring's token master is not the one this vault's tokens were issued under; " +
			"the token master never changes (docs/keys.md)")
	}
	return false, nil
}

// keyCheckValue is the probe's stored form under k.
func keyCheckValue(k *Keyring) []byte {
	key := []byte(keyCheckKey)
	return append(slices.Clip(k.IndexHash(keyCheckProbe)), k.Seal([]byte(keyCheckProbe), key)...)
}

// Get returns the token with its clear PAN. It is on the path of every
// authorization: one Pebble Get, one GCM open, and one buffer that holds the
// key and then every clear field, turned into one string that the fields
// slice.
func (v *Vault) Get(token string) (Token, error) {
	if len(token) > panDigitsMax {
		return Token{}, ErrNotFound // Put never stores one this long
	}
	// The keyring is loaded before the read as well as after it (in
	// tokenFromView); see there.
	before := v.keys.Load()
	key := append(make([]byte, 0, getBufBytes), "t/"...)
	key = append(key, token...)
	val, closer, err := v.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return Token{}, ErrNotFound
	}
	if err != nil {
		return Token{}, fmt.Errorf("vault: get %s: %w", iso8583.PAN(token), err)
	}
	defer closer.Close()
	r, err := parseRecord(val)
	if err != nil {
		return Token{}, corrupt(token, err)
	}
	return v.tokenFromView(token, key, &r, before)
}

// tokenFromView opens the PAN with the keyring loaded after the record was
// read: a record sealed under a version SetKeyring just added was written
// after that keyring was stored, so this load sees it. before, loaded ahead
// of the read, covers the other way round: a record read just before Rekey
// rewrote it, under a version a SetKeyring dropped since.
func (v *Vault) tokenFromView(token string, key []byte, r *recordView, before *Keyring) (Token, error) {
	b := key[len(key):]
	b = append(b, r.deviceID...)
	b = append(b, r.wallet...)
	b = append(b, r.requestorID...)
	b = append(b, r.cardExpiry...)
	b = append(b, r.tokenExpiry...)
	keys := v.keys.Load()
	opened, err := keys.openAppend(b, r.sealedPAN, key[len("t/"):])
	if err != nil && keys != before {
		opened, err = before.openAppend(b, r.sealedPAN, key[len("t/"):])
	}
	b = opened
	if err != nil {
		return Token{}, corrupt(token, err)
	}
	s := string(b)
	next := func(n int) string { f := s[:n]; s = s[n:]; return f }
	return Token{
		Token:         iso8583.PAN(token),
		DeviceID:      next(len(r.deviceID)),
		WalletAccount: next(len(r.wallet)),
		RequestorID:   next(len(r.requestorID)),
		CardExpiry:    next(4),
		TokenExpiry:   next(4),
		PAN:           iso8583.PAN(s),
		Status:        r.status,
		Domain:        r.domain,
		CreatedAt:     r.createdAt,
	}, nil
}

func corrupt(token string, err error) error {
	return fmt.Errorf("%w for token %s: %w", ErrCorrupt, iso8583.PAN(token), err)
}

// Put creates or replaces a token in one synchronous batch with its index
// entries, deleting the entries of the record it replaces when the PAN or
// device changed.
func (v *Vault) Put(t Token) error {
	if err := validateToken(&t); err != nil {
		return err
	}
	return retryConflicts(func() error { return v.put(&t) })
}

func (v *Vault) put(t *Token) error {
	v.lockWrite()
	defer v.writeMu.Unlock()
	token, pan := t.Token.Clear(), t.PAN.Clear()
	old, found, err := v.load(token)
	if err != nil {
		return err
	}
	if found && old.status == StatusDeleted {
		return fmt.Errorf("%w: token %s is deleted, and a deleted token is never reused", ErrInvalid, t.Token)
	}
	if err := v.checkNumbersApart(token, pan); err != nil {
		return err
	}
	b := v.db.NewBatch()
	defer b.Close()
	keys := v.keys.Load() // stable: SetKeyring swaps it under writeMu
	hash := keys.IndexHash(pan)
	if err := v.replaceIndexes(b, t, hash, old, found); err != nil {
		return err
	}
	r := record{
		status: t.Status, domain: t.Domain,
		cardExpiry: t.CardExpiry, tokenExpiry: t.TokenExpiry, createdAt: t.CreatedAt,
		deviceID: t.DeviceID, wallet: t.WalletAccount, requestorID: t.RequestorID,
		sealedPAN: keys.Seal([]byte(pan), []byte(token)),
	}
	b.Set(recordKey(token), r.encode(), nil)
	return v.commit(b)
}

// checkNumbersApart keeps tokens and PANs disjoint across the vault, not just
// within one record: a token equal to some card's PAN would send that card's
// number to terminals and logs as if it were harmless.
func (v *Vault) checkNumbersApart(token, pan string) error {
	clash, err := v.scan(panPrefix(v.keys.Load().IndexHash(token)), tokensPerPANMax)
	if err != nil {
		return err
	}
	if len(clash) > 0 {
		return fmt.Errorf("%w: token %s is the PAN of a card in the vault", ErrInvalid, iso8583.PAN(token))
	}
	_, isToken, err := v.load(pan)
	if err != nil {
		return err
	}
	if isToken {
		return fmt.Errorf("%w: the PAN for token %s is itself a token in the vault", ErrInvalid, iso8583.PAN(token))
	}
	return nil
}

// replaceIndexes adds t's index entries to b and deletes the old record's
// entries that no longer apply, refusing to grow an index past its limit.
func (v *Vault) replaceIndexes(b *pebble.Batch, t *Token, hash []byte, old record, found bool) error {
	token := t.Token.Clear()
	var oldHash []byte
	if found {
		keys := v.keys.Load()
		oldPAN, err := keys.Open(old.sealedPAN, []byte(token))
		if err != nil {
			return corrupt(token, err)
		}
		oldHash = keys.IndexHash(string(oldPAN))
	}
	if !found || old.deviceID != t.DeviceID {
		if err := v.checkRoom(deviceIndexPrefix(t.DeviceID), tokensPerDeviceMax, "device "+t.DeviceID); err != nil {
			return err
		}
		if found {
			b.Delete(deviceIndexKey(old.deviceID, token), nil)
		}
	}
	if !found || !bytes.Equal(oldHash, hash) {
		if err := v.checkRoom(panPrefix(hash), tokensPerPANMax, "the card"); err != nil {
			return err
		}
		if found {
			b.Delete(panIndexKey(oldHash, token), nil)
		}
	}
	b.Set(deviceIndexKey(t.DeviceID, token), nil, nil)
	b.Set(panIndexKey(hash, token), nil, nil)
	return nil
}

func (v *Vault) checkRoom(prefix []byte, limit int, what string) error {
	have, err := v.scan(prefix, limit)
	if err != nil {
		return err
	}
	if len(have) >= limit {
		return fmt.Errorf("%w: %s already has %d tokens, the limit", ErrInvalid, what, limit)
	}
	return nil
}

// commit makes b durable: on one node in db; in a cluster in the log,
// refused with replica.ErrConflict when another node's write came after
// the position the caller read at, and applied to db on return.
func (v *Vault) commit(b *pebble.Batch) error {
	if v.log == nil {
		return v.commitLocal(b)
	}
	seq, err := v.log.Commit(b.Repr(), v.base)
	if err != nil {
		return fmt.Errorf("vault: commit: %w", err)
	}
	v.base = seq
	return nil
}

// commitLocal writes b to this node's db only: every write on one node,
// and the keyring's node-local records (m/) in a cluster.
func (v *Vault) commitLocal(b *pebble.Batch) error {
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("vault: commit: %w", err)
	}
	return nil
}

// load reads a token's record with its PAN still sealed.
func (v *Vault) load(token string) (record, bool, error) {
	val, closer, err := v.db.Get(recordKey(token))
	if errors.Is(err, pebble.ErrNotFound) {
		return record{}, false, nil
	}
	if err != nil {
		return record{}, false, fmt.Errorf("vault: get %s: %w", iso8583.PAN(token), err)
	}
	defer closer.Close()
	view, err := parseRecord(val)
	if err != nil {
		return record{}, false, corrupt(token, err)
	}
	return view.owned(), true, nil
}

// TokensForPAN returns every token of a card, deleted ones included, found
// through the keyed-hash index. None is an empty result, not an error.
func (v *Vault) TokensForPAN(pan string) ([]string, error) {
	return v.scan(panPrefix(v.keys.Load().IndexHash(pan)), tokensPerPANMax)
}

// TokensForDevice returns every token bound to a device, deleted ones
// included. None is an empty result, not an error.
func (v *Vault) TokensForDevice(deviceID string) ([]string, error) {
	if !validDeviceID(deviceID) {
		return nil, fmt.Errorf("%w: device ID must be 1-%d printable ASCII bytes without '/'", ErrInvalid, deviceIDBytesMax)
	}
	return v.scan(deviceIndexPrefix(deviceID), tokensPerDeviceMax)
}

// scan returns the tokens of the index entries under prefix. More than limit
// means Put's check was bypassed: a bug, reported rather than truncated.
func (v *Vault) scan(prefix []byte, limit int) ([]string, error) {
	// Every prefix ends in '/', so bumping its last byte bounds it above.
	upper := append(slices.Clone(prefix[:len(prefix)-1]), prefix[len(prefix)-1]+1)
	it, err := v.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("vault: scan: %w", err)
	}
	var out []string
	for ok := it.First(); ok && len(out) <= limit; ok = it.Next() {
		out = append(out, string(it.Key()[len(prefix):]))
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, fmt.Errorf("vault: scan: %w", err)
	}
	if len(out) > limit {
		return nil, fmt.Errorf("%w: more than %d index entries under one key", ErrCorrupt, limit)
	}
	return out, nil
}

// SetStatus changes a token's status. Setting the status it has is a no-op;
// a deleted token stays deleted.
func (v *Vault) SetStatus(token string, s Status) error {
	if _, ok := statusCode(s); !ok {
		return fmt.Errorf("%w: unknown status %q", ErrInvalid, s)
	}
	return retryConflicts(func() error { return v.setStatus(token, s) })
}

func (v *Vault) setStatus(token string, s Status) error {
	v.lockWrite()
	defer v.writeMu.Unlock()
	r, found, err := v.load(token)
	switch {
	case err != nil:
		return err
	case !found:
		return ErrNotFound
	case r.status == s:
		return nil
	case r.status == StatusDeleted:
		return fmt.Errorf("%w: token %s is deleted, which is final", ErrInvalid, iso8583.PAN(token))
	}
	r.status = s
	b := v.db.NewBatch()
	defer b.Close()
	b.Set(recordKey(token), r.encode(), nil)
	return v.commit(b)
}

// SuspendDevice suspends every active token on a device in one synchronous
// batch, for a device reported lost, and returns how many it changed. A
// record it cannot read does not stop it: the others are still suspended,
// and the error names what was skipped.
func (v *Vault) SuspendDevice(deviceID string) (int, error) {
	if !validDeviceID(deviceID) {
		return 0, fmt.Errorf("%w: device ID must be 1-%d printable ASCII bytes without '/'", ErrInvalid, deviceIDBytesMax)
	}
	var n int
	err := retryConflicts(func() error {
		var err error
		n, err = v.suspendDevice(deviceID)
		return err
	})
	return n, err
}

func (v *Vault) suspendDevice(deviceID string) (int, error) {
	v.lockWrite()
	defer v.writeMu.Unlock()
	tokens, err := v.scan(deviceIndexPrefix(deviceID), tokensPerDeviceMax)
	if err != nil {
		return 0, err
	}
	b := v.db.NewBatch()
	defer b.Close()
	var skipped []error
	for _, token := range tokens {
		r, found, err := v.load(token)
		if err == nil && !found {
			err = fmt.Errorf("%w: device index names token %s, which has no record", ErrCorrupt, iso8583.PAN(token))
		}
		if err != nil {
			skipped = append(skipped, err)
			continue
		}
		if r.status == StatusActive {
			r.status = StatusSuspended
			b.Set(recordKey(token), r.encode(), nil)
		}
	}
	n := int(b.Count())
	if n > 0 {
		if err := v.commit(b); err != nil {
			return 0, err
		}
	}
	return n, errors.Join(skipped...)
}

func validateToken(t *Token) error {
	var problem string
	switch {
	case !validNumber(t.Token.Clear()):
		problem = fmt.Sprintf("token %s is not a %d-%d digit Luhn-valid number", t.Token, panDigitsMin, panDigitsMax)
	case !validNumber(t.PAN.Clear()):
		problem = fmt.Sprintf("the PAN of token %s is not a %d-%d digit Luhn-valid number", t.Token, panDigitsMin, panDigitsMax)
	case t.Token == t.PAN:
		problem = fmt.Sprintf("token %s equals its PAN", t.Token)
	case !validYYMM(t.CardExpiry):
		problem = "card expiry is not YYMM with month 01-12"
	case !validYYMM(t.TokenExpiry):
		problem = "token expiry is not YYMM with month 01-12"
	case !knownStatus(t.Status):
		problem = fmt.Sprintf("unknown status %q", t.Status)
	case !validDeviceID(t.DeviceID):
		problem = fmt.Sprintf("device ID must be 1-%d printable ASCII bytes without '/'", deviceIDBytesMax)
	case !printableASCII(t.WalletAccount, walletAccountBytesMax):
		problem = fmt.Sprintf("wallet account must be 1-%d printable ASCII bytes", walletAccountBytesMax)
	case len(t.RequestorID) != requestorIDBytes || !allDigits(t.RequestorID):
		problem = fmt.Sprintf("token requestor ID must be %d digits", requestorIDBytes)
	default:
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalid, problem)
}

func knownStatus(s Status) bool { _, ok := statusCode(s); return ok }

func validNumber(s string) bool {
	return len(s) >= panDigitsMin && len(s) <= panDigitsMax && iso8583.LuhnValid(s)
}

// validDeviceID keeps '/' out because it ends the device part of an index
// key: device "a" must not find the tokens of device "a/b".
func validDeviceID(s string) bool {
	return printableASCII(s, deviceIDBytesMax) && !strings.Contains(s, "/")
}

// printableASCII matches what DE48 can carry to the issuer.
func printableASCII(s string, max int) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func recordKey(token string) []byte { return append([]byte("t/"), token...) }

func panPrefix(hash []byte) []byte {
	return append(append([]byte("p/"), hash...), '/')
}

func panIndexKey(hash []byte, token string) []byte { return append(panPrefix(hash), token...) }

func deviceIndexPrefix(deviceID string) []byte {
	return append(append([]byte("d/"), deviceID...), '/')
}

func deviceIndexKey(deviceID, token string) []byte {
	return append(deviceIndexPrefix(deviceID), token...)
}
