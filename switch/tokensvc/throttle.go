package tokensvc

import (
	"container/list"
	"sync"
	"time"
)

// The throttle slows password guessing down without locking anyone out.
//
// Each key (a client address, or a client address with a login) has a
// bucket of burst attempts that refills one attempt per every. An attempt
// takes one from every key it names before the password is hashed, so
// concurrent guesses cannot outrun it; a right password gives them back.
// An empty bucket is answered 429 with Retry-After, for an unknown login
// exactly as for a known one, and costs no hash.
//
// Nothing is keyed by the login alone: an attacker's failures from one
// address never slow the owner down from another. The price is that a
// guesser with many addresses gets many buckets; against that stand the
// password rules (password.go: no common password gets in) and argon2id.
//
// The state is in memory, per node: a restart forgets it, which gives a
// guesser one more burst per restart. At most throttleKeysMax keys are
// held; past that the least recently used is forgotten (a guesser who
// owns that many addresses is not slowed by this list anyway).
//
// Rejected: the lock-out this replaces (5 failures locked the account for
// 15 minutes, so anyone could keep its owner out for ever), and
// exponential delays per login (the same flaw, slower).

// throttleRule is one kind of bucket.
type throttleRule struct {
	name  string // for the key and the logs
	burst int
	every time.Duration
}

// Throttle rules: the docs (doc.go, docs/api.md) list them.
var (
	// passwordFailuresPerAddressLogin: five guesses at one account from
	// one address, then one every three minutes (20 an hour).
	passwordFailuresPerAddressLogin = throttleRule{name: "address+login", burst: 5, every: 3 * time.Minute}
	// passwordFailuresPerAddress: 20 guesses from one address at any
	// accounts, then one every 30 seconds (120 an hour).
	passwordFailuresPerAddress = throttleRule{name: "address", burst: 20, every: 30 * time.Second}
	// signupsPerAddress: sign-ups tell whether a login is taken (409), so
	// one address may try 10, then one every 6 minutes (10 an hour).
	signupsPerAddress = throttleRule{name: "signup", burst: 10, every: 6 * time.Minute}
)

// throttleKeysMax bounds the keys held; about 200 bytes each.
const throttleKeysMax = 100_000

// throttleKey names one bucket.
type throttleKey struct {
	rule    string
	address string
	login   string
}

// bucket is a generic cell rate: full is the time the bucket is full
// again; each attempt taken moves it every later.
type bucket struct {
	key  throttleKey
	full time.Time
}

// throttle holds the buckets, least recently used at the back.
type throttle struct {
	mu      sync.Mutex
	keysMax int
	lru     *list.List // of *bucket
	byKey   map[throttleKey]*list.Element
}

func newThrottle(keysMax int) *throttle {
	return &throttle{keysMax: keysMax, lru: list.New(), byKey: map[throttleKey]*list.Element{}}
}

// charge is one key with its rule, as take receives them.
type charge struct {
	rule throttleRule
	key  throttleKey
}

func addressCharge(rule throttleRule, address string) charge {
	return charge{rule, throttleKey{rule: rule.name, address: address}}
}

func loginCharge(rule throttleRule, address, login string) charge {
	return charge{rule, throttleKey{rule: rule.name, address: address, login: login}}
}

// take takes one attempt from each charge's bucket at now, all or none.
// When one is empty it returns how long until that bucket has an attempt
// again (the longest of the empty ones) and takes nothing.
func (t *throttle) take(now time.Time, charges ...charge) (wait time.Duration, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range charges {
		full := t.fullAt(c.key, now)
		// Attempts in use: (full-now)/every; one more must fit in burst.
		limit := time.Duration(c.rule.burst-1) * c.rule.every
		if over := full.Sub(now) - limit; over > 0 {
			wait = max(wait, over)
		}
	}
	if wait > 0 {
		return wait, false
	}
	for _, c := range charges {
		b := t.bucketFor(c.key)
		b.full = t.fullAt(c.key, now).Add(c.rule.every)
	}
	return 0, true
}

// give returns one attempt to each charge's bucket: the attempt taken for
// a password that turned out right, or one that was never tried.
func (t *throttle) give(now time.Time, charges ...charge) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range charges {
		e, ok := t.byKey[c.key]
		if !ok {
			continue
		}
		b := e.Value.(*bucket)
		b.full = b.full.Add(-c.rule.every)
		if !b.full.After(now) {
			t.lru.Remove(e)
			delete(t.byKey, c.key)
		}
	}
}

// forget empties the bucket of a key: a right password clears its
// address's count at that login.
func (t *throttle) forget(key throttleKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.byKey[key]; ok {
		t.lru.Remove(e)
		delete(t.byKey, key)
	}
}

// fullAt is when key's bucket is full: now for a key not held or already
// full.
func (t *throttle) fullAt(key throttleKey, now time.Time) time.Time {
	e, ok := t.byKey[key]
	if !ok {
		return now
	}
	if full := e.Value.(*bucket).full; full.After(now) {
		return full
	}
	return now
}

// bucketFor returns key's bucket, made and moved to the front, forgetting
// the least recently used key when keysMax are held.
func (t *throttle) bucketFor(key throttleKey) *bucket {
	if e, ok := t.byKey[key]; ok {
		t.lru.MoveToFront(e)
		return e.Value.(*bucket)
	}
	if t.lru.Len() >= t.keysMax {
		last := t.lru.Back()
		t.lru.Remove(last)
		delete(t.byKey, last.Value.(*bucket).key)
	}
	b := &bucket{key: key}
	t.byKey[key] = t.lru.PushFront(b)
	return b
}

// size is the number of keys held.
func (t *throttle) size() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}
