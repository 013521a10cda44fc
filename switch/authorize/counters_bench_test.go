package authorize

import (
	"context"
	"testing"

	"github.com/tapswitch/tapswitch/switch/journal"
)

// BenchmarkCounterWindow is one tap's counter steps without the journal
// write (hold, check, accept, release as journaled) on one token, called
// directly on the journal cache ("direct", the pipeline's code before the
// Counters seam) and through the seam ("seam", the pipeline's code now),
// side by side in one run: the seam's own cost.
func BenchmarkCounterWindow(b *testing.B) {
	const token = "6299901234567893"
	open := func(b *testing.B) *journal.Journal {
		j, err := journal.Open(b.TempDir(), journal.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { j.Close() })
		return j
	}
	b.Run("direct", func(b *testing.B) {
		j, c := open(b), newCounters()
		b.ReportAllocs()
		var counter uint32
		for b.Loop() {
			counter++
			held := c.acquire(token)
			if err := held.load(j, token); err != nil {
				b.Fatal(err)
			}
			if err := held.window.Check(counter); err != nil {
				b.Fatal(err)
			}
			u := held.accept(token, counter)
			held.mu.Unlock()
			held.journaled(u, true)
			c.release(token, held)
		}
	})
	b.Run("seam", func(b *testing.B) {
		var cs Counters = journalCounters{c: newCounters(), j: open(b)}
		ctx := context.Background()
		b.ReportAllocs()
		var counter uint32
		for b.Loop() {
			counter++
			held, err := cs.Hold(ctx, token)
			if err != nil {
				b.Fatal(err)
			}
			if err := held.Window().Check(counter); err != nil {
				b.Fatal(err)
			}
			u, spent, err := held.Accept(ctx, counter)
			if err != nil || !spent {
				b.Fatal(spent, err)
			}
			held.Checked()
			held.Release(u, true)
		}
	})
}
