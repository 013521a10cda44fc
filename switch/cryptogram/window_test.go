package cryptogram

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// accepted runs counters through a fresh window as the switch does:
// Check, then Accept when it passes. It returns the window and each
// counter's error.
func accepted(counters ...uint32) (Window, []error) {
	var w Window
	errs := make([]error, len(counters))
	for i, c := range counters {
		if errs[i] = w.Check(c); errs[i] == nil {
			w = w.Accept(c)
		}
	}
	return w, errs
}

func TestWindowRule(t *testing.T) {
	cases := []struct {
		name     string
		counters []uint32
		want     []error // for each counter
	}{
		{"in order", []uint32{1, 2, 3}, []error{nil, nil, nil}},
		{"gaps are fine", []uint32{1, 5, 900}, []error{nil, nil, nil}},
		{"replay of the last", []uint32{1, 2, 2}, []error{nil, nil, ErrReplay}},
		{"replay of an older one", []uint32{1, 2, 3, 1}, []error{nil, nil, nil, ErrReplay}},
		{"out of order within the window, once", []uint32{10, 12, 11, 11}, []error{nil, nil, nil, ErrReplay}},
		{"a skipped counter later", []uint32{1, 3, 2}, []error{nil, nil, nil}},
		{"WindowSize behind is inside", []uint32{2000, 2000 - WindowSize}, []error{nil, nil}},
		{"WindowSize+1 behind is outside", []uint32{2000, 2000 - WindowSize - 1}, []error{nil, ErrTooOld}},
		{"the old last is remembered after a jump of WindowSize", []uint32{1, 1 + WindowSize, 1}, []error{nil, nil, ErrReplay}},
		{"after a jump past the window, old ones are too old, new ones near the top fine",
			[]uint32{1, 2, 5000, 2, 4000, 4000}, []error{nil, nil, nil, ErrTooOld, nil, ErrReplay}},
		{"bits cross words", []uint32{100, 30, 35, 101, 230, 30, 35, 100, 101, 300}, []error{nil, nil, nil, nil, nil, ErrReplay, ErrReplay, ErrReplay, ErrReplay, nil}},
		{"zero never", []uint32{0}, []error{ErrReplay}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errs := accepted(c.counters...)
			for i := range errs {
				if !errors.Is(errs[i], c.want[i]) || (c.want[i] == nil && errs[i] != nil) {
					t.Errorf("counter %d (#%d): %v, want %v", c.counters[i], i, errs[i], c.want[i])
				}
			}
		})
	}
}

// TestWindowAgainstModel shuffles counters within bounded distances and
// compares the window with a model that remembers every counter accepted:
// the window must never accept one twice, and must accept every new one
// within WindowSize of the highest.
func TestWindowAgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 200 {
		var w Window
		seen := map[uint32]bool{}
		var high uint32
		n := 1 + rng.IntN(3000)
		for range n {
			c := uint32(1 + rng.IntN(int(high)+WindowSize/8))
			err := w.Check(c)
			switch {
			case seen[c] && err == nil:
				t.Fatalf("round %d: counter %d accepted twice", round, c)
			case !seen[c] && c+WindowSize >= high && err != nil:
				t.Fatalf("round %d: new counter %d refused at high %d: %v", round, c, high, err)
			case !seen[c] && c+WindowSize < high && !errors.Is(err, ErrTooOld):
				t.Fatalf("round %d: counter %d older than the window: %v", round, c, err)
			}
			if err == nil {
				w = w.Accept(c)
				seen[c], high = true, max(high, c)
			}
			if w.Last != high {
				t.Fatalf("round %d: Last %d, highest accepted %d", round, w.Last, high)
			}
			if probe := uint32(max(0, int(high)-rng.IntN(WindowSize+1))); w.Seen(probe) != seen[probe] {
				t.Fatalf("round %d: Seen(%d) = %v at high %d", round, probe, w.Seen(probe), high)
			}
		}
		back, err := WindowOf(w.Last, w.AppendSeen(nil))
		if err != nil || back != w {
			t.Fatalf("round %d: window does not survive AppendSeen/WindowOf: %v", round, err)
		}
	}
	if _, err := WindowOf(1, make([]byte, SeenBytes-1)); err == nil {
		t.Fatal("a short bitmap accepted")
	}
}

func TestResolve(t *testing.T) {
	cases := []struct {
		last uint32
		atc  uint16
		want uint32
		err  error
	}{
		{0, 1, 1, nil},
		{0, 0x7fff, 0x7fff, nil},
		{0, 0x8000, 0, ErrCounterUnknown}, // a first tap must be near the start
		{0, 0, 0, ErrCounterUnknown},
		{41, 42, 42, nil},
		{42, 42, 42, nil}, // resolved; Check calls it a replay
		{100, 36, 36, nil},
		{0xfff0, 0x0005, 0x10005, nil}, // the ATC wrapped
		{0x10005, 0xfff0, 0xfff0, nil}, // a late tap from before the wrap
		{0x12345, 0x2345, 0x12345, nil},
		{0x12345, 0x2345 + 0x7fff, 0x12345 + 0x7fff, nil},
		{0x12345, 0x2345 + 0x8000, 0x12345 - 0x8000, nil},
		{math.MaxUint32 - 2, 0x0001, 0, ErrCounterUnknown}, // past the counter's range
	}
	for _, c := range cases {
		got, err := Window{Last: c.last}.Resolve(c.atc)
		if got != c.want || !errors.Is(err, c.err) || (c.err == nil && err != nil) {
			t.Errorf("Resolve(%#x) at last %#x = %#x, %v; want %#x, %v", c.atc, c.last, got, err, c.want, c.err)
		}
	}
}

// TestReplayAcrossTheWrap: a cryptogram from before the ATC wrapped,
// replayed long after, resolves to a counter of the present and so fails
// its MAC.
func TestReplayAcrossTheWrap(t *testing.T) {
	old := vectorTap()
	old.Counter = 42
	arqc, err := ARQC(vectorKey, old)
	if err != nil {
		t.Fatal(err)
	}
	w := Window{Last: 42 + 1<<16 - 5}
	c, err := w.Resolve(old.ATC())
	if err != nil {
		t.Fatal(err)
	}
	if c == old.Counter {
		t.Fatalf("resolved to the old counter %d", c)
	}
	replayed := old
	replayed.Counter = c
	if Verify(vectorKey, replayed, arqc) {
		t.Fatal("the old cryptogram verifies under the resolved counter")
	}
}
