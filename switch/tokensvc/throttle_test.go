package tokensvc

import (
	"testing"
	"time"
)

// TestThrottleBuckets: the bucket's arithmetic, step by step on a clock
// the test moves.
func TestThrottleBuckets(t *testing.T) {
	rule := throttleRule{name: "r", burst: 3, every: time.Minute}
	other := throttleRule{name: "o", burst: 4, every: time.Second}
	th := newThrottle(100)
	t0 := time.Date(2026, 3, 15, 2, 0, 0, 0, time.UTC)
	a := loginCharge(rule, "192.0.2.1", "alice")
	b := addressCharge(other, "192.0.2.1")
	steps := []struct {
		at   time.Duration
		do   string // "take", "give"
		ok   bool
		wait time.Duration
	}{
		{0, "take", true, 0},
		{0, "take", true, 0},
		{0, "take", true, 0},
		{0, "take", false, time.Minute}, // burst spent
		{30 * time.Second, "take", false, 30 * time.Second},
		{time.Minute, "take", true, 0}, // one back per minute
		{time.Minute, "take", false, time.Minute},
		{time.Minute, "give", true, 0}, // a right password gives it back
		{time.Minute, "take", true, 0},
		{10 * time.Minute, "take", true, 0}, // full again long after
		{10 * time.Minute, "take", true, 0},
		{10 * time.Minute, "take", true, 0},
		{10 * time.Minute, "take", false, time.Minute},
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		if s.do == "give" {
			th.give(now, a, b)
			continue
		}
		wait, ok := th.take(now, a, b)
		if ok != s.ok || wait != s.wait {
			t.Fatalf("step %d at +%v: take = %v, %v; want %v, %v", i, s.at, wait, ok, s.wait, s.ok)
		}
	}
	// A refused take took nothing: the other rule's bucket holds only the
	// three attempts admitted at +10m, so a fourth fits.
	if wait, ok := th.take(t0.Add(10*time.Minute), b); !ok {
		t.Fatalf("the address bucket is empty (wait %v): refused takes were charged", wait)
	}
	th.forget(a.key)
	if _, ok := th.take(t0.Add(10*time.Minute), a); !ok {
		t.Fatal("forget left the bucket empty")
	}
}

// TestThrottleKeysAreBounded: past keysMax the least recently used key is
// forgotten, never more held.
func TestThrottleKeysAreBounded(t *testing.T) {
	rule := throttleRule{name: "r", burst: 1, every: time.Hour}
	th := newThrottle(3)
	now := time.Date(2026, 3, 15, 2, 0, 0, 0, time.UTC)
	for _, addr := range []string{"a", "b", "c"} {
		th.take(now, addressCharge(rule, addr))
	}
	th.take(now, addressCharge(rule, "a")) // refused: a refusal does not make a key recent
	th.take(now, addressCharge(rule, "d")) // forgets a, the least recently used
	if th.size() != 3 {
		t.Fatalf("%d keys held, want 3", th.size())
	}
	if _, ok := th.take(now, addressCharge(rule, "a")); !ok {
		t.Fatal("a was not the one forgotten")
	}
	if _, ok := th.take(now, addressCharge(rule, "c")); ok {
		t.Fatal("c was forgotten instead")
	}
}
