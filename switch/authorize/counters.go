package authorize

import (
	"fmt"
	"sync"

	"github.com/tapswitch/tapswitch/switch/cryptogram"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// counters holds the cryptogram counter windows of the tokens tapped
// lately: those with a tap in flight, and up to windowsCached idle ones. A
// tap locks its token's entry across the cryptogram check only (loading
// the window from the journal first when the entry is new), accepts its
// counter in memory, and holds the entry until its outcome, counter
// included, is journaled. So two taps cannot spend one counter, yet taps
// of one token still overlap at the issuer and share the journal's fsync:
// holding the lock until the entry is durable would put each token's taps
// in single file, and the bench harness sends dozens of one token's taps
// at once.
//
// The switch is its journal's only writer, so an idle entry's window is
// the stored one, and the next tap of the token needs no read: the read is
// a Pebble iteration over the token's versions (and the tombstones of the
// ones dropped), the costliest journal call of a tap. An entry one of
// whose batches failed is not kept: its window holds a counter the journal
// does not, and the next tap reads the journal again, as after a restart.
//
// Each accepted counter makes a new numbered snapshot of the window
// (journal.ATCUpdate); batches that commit out of order cannot make the
// stored window go back, because the highest version is the window. Each
// batch also deletes the versions written by batches that committed before
// it was prepared (and after the previous batch was): a delete issued
// before the write it targets would not hold, and about half of a hot
// token's batches commit out of order.
//
// Bound: windowsCached entries, or the tokens with a tap between its check
// and its journal entry when they are more (at most the terminal server's
// requests in flight); an entry's versions to delete are at most its taps in flight,
// at most dropsMax per batch.
type counters struct {
	mu     sync.Mutex
	tokens map[string]*tokenCounters
}

// dropsMax bounds the old versions one batch deletes; the rest wait for the
// next batch, or for the next load of the token's window, which deletes
// every version below the highest.
const dropsMax = 64

// windowsCached bounds the windows kept (about 200 bytes each).
const windowsCached = 1 << 16

// tokenCounters is one token's window while taps of it are in flight.
type tokenCounters struct {
	owner   *counters  // set once by acquire
	token   string     // set once by acquire
	mu      sync.Mutex // held across load, check and accept, and by journaled
	refs    int        // taps holding the entry; guarded by counters.mu
	loaded  bool
	failed  bool // a batch of this entry failed; guarded by mu, read by the last release
	window  cryptogram.Window
	version uint64 // of the last snapshot handed out
	// onDisk are versions written by committed batches that no batch
	// prepared since has been given to delete.
	onDisk []uint64
}

func newCounters() *counters {
	return &counters{tokens: make(map[string]*tokenCounters)}
}

// acquire returns token's entry, locked, and holds it for the caller until
// release.
func (c *counters) acquire(token string) *tokenCounters {
	c.mu.Lock()
	t := c.tokens[token]
	if t == nil {
		t = &tokenCounters{owner: c, token: token}
		c.tokens[token] = t
	}
	t.refs++
	c.mu.Unlock()
	t.mu.Lock()
	return t
}

// release ends the caller's hold, once the tap's outcome is journaled (or
// failed to be). The last holder keeps the entry as an idle window when
// it matches the journal, evicting an idle one beyond windowsCached
// entries.
func (c *counters) release(token string, t *tokenCounters) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t.refs--
	if t.refs > 0 {
		return
	}
	if !t.loaded || t.failed {
		delete(c.tokens, token)
		return
	}
	if len(c.tokens) > windowsCached {
		c.evictIdle(token)
	}
}

// evictIdle drops one idle entry other than keep (map order is random).
// The caller holds c.mu.
func (c *counters) evictIdle(keep string) {
	for tok, t := range c.tokens {
		if t.refs == 0 && tok != keep {
			delete(c.tokens, tok)
			return
		}
	}
}

// load reads the token's window from the journal unless an earlier tap
// did. The caller holds t.mu.
func (t *tokenCounters) load(j *journal.Journal, token string) error {
	if t.loaded {
		return nil
	}
	s, found, err := j.LoadATC(token)
	if err != nil {
		return err
	}
	if found {
		if t.window, err = cryptogram.WindowOf(s.Last, s.Seen); err != nil {
			return fmt.Errorf("token counters version %d: %w", s.Version, err)
		}
		t.onDisk = append(t.onDisk, s.Version)
	}
	t.version, t.loaded = s.Version, true
	return nil
}

// accept spends counter and returns the snapshot to journal with the tap's
// outcome, with the versions it supersedes on disk to delete. The caller
// holds t.mu and counter passed the window's Check.
func (t *tokenCounters) accept(token string, counter uint32) *journal.ATCUpdate {
	t.window = t.window.Accept(counter)
	t.version++
	n := min(len(t.onDisk), dropsMax)
	drop := t.onDisk[:n:n]
	t.onDisk = t.onDisk[n:]
	return &journal.ATCUpdate{Token: token, Version: t.version, Last: t.window.Last,
		Seen: t.window.AppendSeen(nil), Drop: drop}
}

// journaled records the fate of u's batch: committed, its version is on
// disk; failed, the versions it was to delete still are.
func (t *tokenCounters) journaled(u *journal.ATCUpdate, committed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if committed {
		t.onDisk = append(t.onDisk, u.Version)
	} else {
		t.onDisk = append(t.onDisk, u.Drop...)
		t.failed = true
	}
}
