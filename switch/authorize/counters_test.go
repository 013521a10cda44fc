package authorize

import (
	"fmt"
	"sync"
	"testing"

	"github.com/tapswitch/tapswitch/switch/cryptogram"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// TestCountersSpendEachOnceUnderConcurrency runs the pipeline's counter
// steps (acquire, load, check, accept, journal, journaled, release) from many
// goroutines, each tap's counter offered several times: every counter is
// spent exactly once, the journal ends with all of them, and the one entry
// left in memory is the token's idle window, equal to the journal's.
func TestCountersSpendEachOnceUnderConcurrency(t *testing.T) {
	j, err := journal.Open(t.TempDir(), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	c := newCounters()
	const token, taps, copies = "6299901234567893", 60, 4
	var mu sync.Mutex
	spent := map[uint32]int{}
	var wg sync.WaitGroup
	var stan int
	for n := range taps * copies {
		counter := uint32(n%taps + 1)
		mu.Lock()
		stan++
		req := goodRequest()
		req.STAN = fmt.Sprintf("%06d", stan)
		e := newEntry(req, decideNow, "node-1")
		e.ResponseCode = "00"
		mu.Unlock()
		wg.Go(func() {
			held := c.acquire(token)
			if err := held.load(j, token); err != nil {
				held.mu.Unlock()
				c.release(token, held)
				t.Error(err)
				return
			}
			var u *journal.ATCUpdate
			if held.window.Check(counter) == nil {
				u = held.accept(token, counter)
			}
			held.mu.Unlock()
			if u != nil {
				err := j.AppendWith(&e, &journal.Change{ATC: u})
				if err != nil {
					t.Error(err)
				}
				held.journaled(u, err == nil)
				mu.Lock()
				spent[counter]++
				mu.Unlock()
			}
			c.release(token, held)
		})
	}
	wg.Wait()
	for n := uint32(1); n <= taps; n++ {
		if spent[n] != 1 {
			t.Errorf("counter %d spent %d times", n, spent[n])
		}
	}
	idle := c.tokens[token]
	if len(c.tokens) != 1 || idle == nil || idle.refs != 0 || idle.failed {
		t.Fatalf("entries left in memory: %d (%+v)", len(c.tokens), idle)
	}
	s, _, err := j.LoadATC(token)
	if err != nil {
		t.Fatal(err)
	}
	w, err := cryptogram.WindowOf(s.Last, s.Seen)
	if err != nil || w.Last != taps {
		t.Fatalf("journal window last %d (%v)", w.Last, err)
	}
	for n := uint32(1); n <= taps; n++ {
		if !w.Seen(n) {
			t.Errorf("journal window lacks counter %d", n)
		}
	}
	if idle.window.Last != w.Last || string(idle.window.AppendSeen(nil)) != string(w.AppendSeen(nil)) ||
		idle.version != s.Version {
		t.Fatalf("idle window (last %d, version %d) is not the journal's (last %d, version %d)",
			idle.window.Last, idle.version, w.Last, s.Version)
	}
}

// TestCountersForgetAWindowWhoseBatchFailed: a tap whose outcome could not
// be journaled leaves its counter spent in memory only; the entry is not
// kept, so the next tap reads the journal's window, which lacks it.
func TestCountersForgetAWindowWhoseBatchFailed(t *testing.T) {
	j, err := journal.Open(t.TempDir(), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	c := newCounters()
	const token = "6299901234567893"
	held := c.acquire(token)
	if err := held.load(j, token); err != nil {
		t.Fatal(err)
	}
	u := held.accept(token, 7)
	held.mu.Unlock()
	held.journaled(u, false)
	c.release(token, held)
	if len(c.tokens) != 0 {
		t.Fatalf("a window with a failed batch was kept")
	}
	again := c.acquire(token)
	defer again.mu.Unlock()
	if err := again.load(j, token); err != nil {
		t.Fatal(err)
	}
	if again.window.Check(7) != nil {
		t.Fatal("counter 7 refused although its tap was never journaled")
	}
}

// TestCountersKeepABoundedNumberOfIdleWindows: beyond windowsCached
// entries, each release evicts an idle one; entries with taps in flight
// stay.
func TestCountersKeepABoundedNumberOfIdleWindows(t *testing.T) {
	c := newCounters()
	busy := c.acquire("9999999999999999")
	busy.loaded = true
	busy.mu.Unlock()
	for n := range windowsCached + 100 {
		token := fmt.Sprintf("%016d", n)
		held := c.acquire(token)
		held.loaded = true
		held.mu.Unlock()
		c.release(token, held)
	}
	if len(c.tokens) != windowsCached {
		t.Fatalf("%d entries in memory, want %d", len(c.tokens), windowsCached)
	}
	if c.tokens["9999999999999999"] != busy {
		t.Fatal("an entry with a tap in flight was evicted")
	}
}
