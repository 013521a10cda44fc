package load

import (
	"testing"
	"time"
)

func TestIntendedTimes(t *testing.T) {
	for _, tc := range []struct {
		i    int64
		rate int
		want time.Duration
	}{
		{0, 1000, 0},
		{1, 1000, time.Millisecond},
		{999, 1000, 999 * time.Millisecond},
		{1, 3, 333333333},
		{3, 3, time.Second},
		{10000, 10000, time.Second},
		// The end of a maximal run: no overflow, no drift.
		{rateMax * int64((durationMax+warmupMax)/time.Second), rateMax, durationMax + warmupMax},
	} {
		if got := intendedOffset(tc.i, tc.rate); got != tc.want {
			t.Errorf("intendedOffset(%d, %d) = %v, want %v", tc.i, tc.rate, got, tc.want)
		}
	}
	// Intended times never go backwards and are spaced 1/rate apart to the
	// nanosecond.
	const rate = 7
	prev := time.Duration(-1)
	for i := int64(0); i < 100; i++ {
		d := intendedOffset(i, rate)
		if d <= prev || d-prev > time.Second/rate+1 && prev >= 0 {
			t.Fatalf("offset %d: %v after %v", i, d, prev)
		}
		prev = d
	}
}

func TestScheduleSpreadsOverConnections(t *testing.T) {
	const connections, rate = 4, 1000
	perConn := make([][]time.Duration, connections)
	for i := int64(0); i < 40; i++ {
		k := connectionOf(i, connections)
		perConn[k] = append(perConn[k], intendedOffset(i, rate))
	}
	for k, offs := range perConn {
		if len(offs) != 10 {
			t.Fatalf("connection %d carries %d requests, want 10", k, len(offs))
		}
		if offs[0] != time.Duration(k)*time.Millisecond {
			t.Errorf("connection %d starts at %v", k, offs[0])
		}
		for j := 1; j < len(offs); j++ {
			if gap := offs[j] - offs[j-1]; gap != 4*time.Millisecond {
				t.Errorf("connection %d: gap %v, want 4ms", k, gap)
			}
		}
	}
}

func TestRequestsDue(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		rate int
		want int64
	}{
		{0, 100, 0},
		{time.Second, 100, 100},
		{time.Second + 1, 100, 101},
		{time.Second, 3, 3},
		{10 * time.Millisecond, 1000, 10},
	} {
		if got := requestsDue(tc.d, tc.rate); got != tc.want {
			t.Errorf("requestsDue(%v, %d) = %d, want %d", tc.d, tc.rate, got, tc.want)
		}
	}
}

func TestSTANSequence(t *testing.T) {
	at := time.Date(2026, 11, 25, 8, 0, 0, 0, time.UTC)
	s := newSTANSeq(999998)
	var got []string
	for range 3 {
		stan, wait := s.next(at)
		if wait != 0 {
			t.Fatal("waited on the first STANs of a second")
		}
		got = append(got, stan)
	}
	if got[0] != "999999" || got[1] != "000001" || got[2] != "000002" {
		t.Fatalf("STANs %v, want 999999 000001 000002", got)
	}
	if l := newSTANSeq(-5).last; l < 0 || l >= stanMax {
		t.Fatal("start outside 0..999998")
	}
	if l := newSTANSeq(stanMax * 3).last; l < 0 || l >= stanMax {
		t.Fatal("start outside 0..999998")
	}
}

// TestSTANNeverRepeatsWithinASecond issues a whole second's worth of STANs
// and checks the next one has to wait for the next second.
func TestSTANNeverRepeatsWithinASecond(t *testing.T) {
	at := time.Date(2026, 11, 25, 8, 0, 0, 500_000_000, time.UTC)
	s := newSTANSeq(12345)
	seen := make(map[string]bool, stanMax)
	for range stanMax {
		stan, wait := s.next(at)
		if wait != 0 || seen[stan] || len(stan) != 6 || stan == "000000" {
			t.Fatalf("STAN %q wait %v after %d", stan, wait, len(seen))
		}
		seen[stan] = true
	}
	stan, wait := s.next(at)
	if stan != "" || wait != 500*time.Millisecond {
		t.Fatalf("the 1,000,000th STAN in one second: %q wait %v", stan, wait)
	}
	stan, wait = s.next(at.Add(wait))
	if wait != 0 || stan != "012346" {
		t.Fatalf("next second: %q wait %v, want 012346 (the cycle continues)", stan, wait)
	}
}
