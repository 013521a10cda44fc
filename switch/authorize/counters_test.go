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
// spent exactly once, the journal ends with all of them, and no entry is
// left in memory.
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
	if len(c.tokens) != 0 {
		t.Fatalf("%d entries left in memory", len(c.tokens))
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
}
