package tokensvc

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tapswitch/tapswitch/switch/pebblelog"
	"github.com/tapswitch/tapswitch/switch/replica"
)

// Record kinds in the store; the package doc lists the key layout.
const (
	prefixAccount        = "a/"
	prefixSession        = "s/"
	prefixAccountSession = "S/"
	prefixBinding        = "b/"
	prefixAccountBinding = "B/"
	prefixDevice         = "d/"
	prefixAccountDevice  = "D/"
	prefixAudit          = "g/"
	prefixAccountAudit   = "l/"
	keyAccountCount      = "m/accounts"
	prefixLimitCard      = "v/c/"
	prefixLimitDevice    = "v/d/"
	prefixLimitAddress   = "v/r/"
	// recordFormat is the "v" of every stored JSON record.
	recordFormat = 1
)

// account is one wallet account.
type account struct {
	V         int          `json:"v"`
	Login     string       `json:"login"`
	Password  passwordHash `json:"password"`
	CreatedAt time.Time    `json:"created_at"`
	// Failed logins are counted by the throttle, in memory, not here: a
	// count in the account let anyone lock its owner out. Records written
	// before keep "failures" and "locked_until", which are ignored.
	// CardAttempts counts card verifications asked since CardWindow began;
	// the window is cardAttemptWindow long.
	CardAttempts int       `json:"card_attempts"`
	CardWindow   time.Time `json:"card_window,omitzero"`
}

// session is a logged-in session, stored under the SHA-256 of its bearer
// token: the store never holds a token that would let its reader log in.
type session struct {
	V     int    `json:"v"`
	Login string `json:"login"`
	// Device is the phone the session was logged in from, "" for a
	// browser; turning that device off ends the session.
	Device    string    `json:"device,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// bindingState is where a binding is in its life.
type bindingState string

const (
	// bindingPending: the issuer approved the card, the code is out.
	bindingPending bindingState = "pending"
	// bindingIssuing: the code was right and the token is being written
	// to the vault. A binding found in this state at start-up was cut off
	// by a crash; recovery deletes its token, whose key never reached the
	// wallet.
	bindingIssuing bindingState = "issuing"
	// bindingConfirmed, bindingFailed and bindingExpired are final.
	bindingConfirmed bindingState = "confirmed"
	bindingFailed    bindingState = "failed"
	bindingExpired   bindingState = "expired"
)

// binding is one card being bound to a device: the issuer's approval, the
// one-time code (hashed) and, once confirmed, the token.
type binding struct {
	V      int          `json:"v"`
	ID     string       `json:"id"`
	Login  string       `json:"login"`
	Device string       `json:"device"`
	State  bindingState `json:"state"`
	// SealedPAN is Keyring.Seal(PAN, aad "tokensvc binding <id>").
	SealedPAN []byte `json:"sealed_pan"`
	// SealedPhone is Keyring.Seal(the cardholder's phone, aad "tokensvc
	// binding phone <id>"): the number the issuer named, where the code
	// went. PhoneHint is it masked, as the wallet was shown it.
	SealedPhone []byte `json:"sealed_phone"`
	PhoneHint   string `json:"phone_hint"`
	// OtherAccounts counts the other wallet accounts that held a live token
	// of the card when the binding began (the cardholder was warned).
	OtherAccounts int       `json:"other_accounts,omitempty"`
	Card          string    `json:"card"` // the PAN masked
	CardExpiry    string    `json:"card_expiry"`
	Issuer        string    `json:"issuer"`
	Product       string    `json:"product"`
	CodeHash      []byte    `json:"code_hash"`
	CodeExpires   time.Time `json:"code_expires"`
	AttemptsLeft  int       `json:"attempts_left"`
	Token         string    `json:"token,omitempty"` // from bindingIssuing on
	CreatedAt     time.Time `json:"created_at"`
}

// device is a phone an account has bound cards to. Off is the lost-phone
// switch: while it is on, Held lists the tokens the device suspension
// turned from active to suspended, which are the ones resuming the device
// turns back on (a token the user suspended alone stays suspended).
type device struct {
	V         int       `json:"v"`
	ID        string    `json:"id"`
	Owner     string    `json:"owner"`
	Off       bool      `json:"off"`
	Held      []string  `json:"held,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ChangedAt time.Time `json:"changed_at"`
}

// store is the service's own Pebble database.
type store struct {
	db *pebble.DB
	// log, in cluster mode, is where the batches go; every node's follower
	// applies them to its own db (package replica). nil on one node.
	log replica.Log
	// base is the log position the current write's reads were made at
	// (guarded by Service.mu, set by its Lock).
	base uint64
}

func openStore(dir string, attach replica.Open) (*store, error) {
	db, err := pebble.Open(dir, &pebble.Options{FormatMajorVersion: pebble.FormatNewest, Logger: pebblelog.Quiet})
	if err != nil {
		return nil, fmt.Errorf("tokensvc: open %s: %w", dir, err)
	}
	st := &store{db: db}
	if attach != nil {
		if st.log, err = attach(db); err != nil {
			db.Close()
			return nil, fmt.Errorf("tokensvc: %s: %w", dir, err)
		}
	}
	return st, nil
}

func (st *store) close() error {
	if st.log != nil {
		st.log.Close()
	}
	return st.db.Close()
}

// writeLock is Service.mu: it serializes the service's writes on this
// node and, in a cluster, notes the log position their reads see at
// least, so that a commit is refused (replica.ErrConflict) when another
// node's batch came after it.
type writeLock struct {
	sync.Mutex
	st *store
}

func (l *writeLock) Lock() {
	l.Mutex.Lock()
	if l.st != nil && l.st.log != nil {
		l.st.base = l.st.log.Applied()
	}
}

// errCorrupt marks a stored record that does not read back: a bug or a
// damaged disk, never bad input.
var errCorrupt = errors.New("tokensvc: corrupt record")

// get reads the JSON record at key into v; found is false when there is none.
func (st *store) get(key string, v any) (found bool, err error) {
	val, closer, err := st.db.Get([]byte(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tokensvc: get: %w", err)
	}
	defer closer.Close()
	if err := json.Unmarshal(val, v); err != nil {
		return false, fmt.Errorf("%w at %s: %v", errCorrupt, keyKind(key), err)
	}
	return true, nil
}

// keyKind names a key's record kind for errors without the rest of the key,
// which may be a login or a device.
func keyKind(key string) string { return key[:min(len(key), 2)] }

// keysUnder returns the keys under prefix, in order, at most limit+1 of
// them, so a caller can tell "exactly limit" from "more".
func (st *store) keysUnder(prefix string, limit int) ([]string, error) {
	it, err := st.iterUnder(prefix)
	if err != nil {
		return nil, err
	}
	var out []string
	for ok := it.First(); ok && len(out) <= limit; ok = it.Next() {
		out = append(out, string(it.Key()))
	}
	return out, closeIter(it)
}

// lastKeyUnder returns the greatest key under prefix, "" for none.
func (st *store) lastKeyUnder(prefix string) (string, error) {
	it, err := st.iterUnder(prefix)
	if err != nil {
		return "", err
	}
	var key string
	if it.Last() {
		key = string(it.Key())
	}
	return key, closeIter(it)
}

// batch collects the writes of one change; commit makes them durable
// together with Sync or not at all.
type batch struct {
	b   *pebble.Batch
	st  *store
	err error
}

func (st *store) newBatch() *batch { return &batch{b: st.db.NewBatch(), st: st} }

func (b *batch) put(key string, v any) {
	if b.err != nil {
		return
	}
	val, err := json.Marshal(v)
	if err != nil {
		b.err = fmt.Errorf("tokensvc: encode %s: %w", keyKind(key), err)
		return
	}
	b.err = b.b.Set([]byte(key), val, nil)
}

func (b *batch) setEmpty(key string) {
	if b.err == nil {
		b.err = b.b.Set([]byte(key), nil, nil)
	}
}

func (b *batch) del(key string) {
	if b.err == nil {
		b.err = b.b.Delete([]byte(key), nil)
	}
}

// delRange deletes the keys from lo up to, not including, hi.
func (b *batch) delRange(lo, hi string) {
	if b.err == nil {
		b.err = b.b.DeleteRange([]byte(lo), []byte(hi), nil)
	}
}

func (b *batch) commit() error {
	defer b.b.Close()
	if b.err != nil {
		return b.err
	}
	if b.b.Empty() {
		return nil
	}
	if b.st.log != nil {
		seq, err := b.st.log.Commit(b.b.Repr(), b.st.base)
		if err != nil {
			return fmt.Errorf("tokensvc: commit: %w", err)
		}
		b.st.base = seq
		return nil
	}
	if err := b.b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("tokensvc: commit: %w", err)
	}
	return nil
}

func accountKey(login string) string { return prefixAccount + login }

func sessionKey(hash []byte) string { return prefixSession + hex.EncodeToString(hash) }

func accountSessionKey(login string, hash []byte) string {
	return prefixAccountSession + login + "/" + hex.EncodeToString(hash)
}

func bindingKey(id string) string { return prefixBinding + id }

func accountBindingKey(login, id string) string { return prefixAccountBinding + login + "/" + id }

func deviceKey(id string) string { return prefixDevice + id }

func accountDeviceKey(login, id string) string { return prefixAccountDevice + login + "/" + id }

// seqText is an audit sequence number as 16 hex digits, so keys sort in
// sequence order.
func seqText(seq uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return hex.EncodeToString(b[:])
}

func auditKey(seq uint64) string { return prefixAudit + seqText(seq) }

func accountAuditKey(login string, seq uint64) string {
	return prefixAccountAudit + login + "/" + seqText(seq)
}

// iterUnder returns an iterator bounded to the keys under prefix.
func (st *store) iterUnder(prefix string) (*pebble.Iterator, error) {
	lo := []byte(prefix)
	hi := append(slices.Clone(lo[:len(lo)-1]), lo[len(lo)-1]+1)
	it, err := st.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("tokensvc: scan: %w", err)
	}
	return it, nil
}

func closeIter(it *pebble.Iterator) error {
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("tokensvc: scan: %w", err)
	}
	return nil
}
