package load

import (
	"fmt"
	"time"
)

// intendedOffset is when open-loop request i is due, from the start of the
// run: i × 1s/rate, in integer nanoseconds so that no drift accumulates over
// a long run. With rate ≤ rateMax and a run ≤ durationMax + warmupMax,
// i × 1e9 stays far below the int64 limit.
func intendedOffset(i int64, rate int) time.Duration {
	return time.Duration(i * int64(time.Second) / int64(rate))
}

// connectionOf is the connection that carries open-loop request i.
func connectionOf(i int64, connections int) int {
	return int(i % int64(connections))
}

// requestsDue is how many open-loop requests fall before offset d: the
// number of i ≥ 0 with intendedOffset(i) < d.
func requestsDue(d time.Duration, rate int) int64 {
	if d <= 0 {
		return 0
	}
	n := int64(d) * int64(rate) / int64(time.Second)
	for intendedOffset(n, rate) < d {
		n++
	}
	return n
}

// stanMax is the last STAN; the sequence wraps to 000001 after it.
const stanMax = 999999

// stanSeq issues one terminal's STANs: 000001..999999 in order, wrapping.
// The switch's duplicate key is terminal + STAN + DE7 (to the second), so a
// terminal must not issue the same STAN twice within one second of DE7. A
// run of consecutive STANs repeats none until it is 999,999 long, so it is
// enough never to issue more than 999,999 in one second: next says to wait
// for the next second when the current one is full. It is not safe for
// concurrent use.
type stanSeq struct {
	last     int   // the STAN issued last, 1..stanMax (0 before the first)
	second   int64 // Unix second of the issues counted in inSecond
	inSecond int
}

// newSTANSeq issues start+1 first (wrapped into 1..999999), so runs started
// moments apart on the same terminal ID begin at different STANs.
func newSTANSeq(start int) stanSeq {
	return stanSeq{last: (start%stanMax + stanMax) % stanMax}
}

// next returns the STAN to use with DE7 = now, or wait > 0 when now's second
// has had its 999,999 STANs: then the caller waits that long and asks again
// with the later time.
func (s *stanSeq) next(now time.Time) (stan string, wait time.Duration) {
	sec := now.Unix()
	if sec != s.second {
		s.second, s.inSecond = sec, 0
	}
	if s.inSecond >= stanMax {
		return "", time.Unix(sec+1, 0).Sub(now)
	}
	s.inSecond++
	s.last = s.last%stanMax + 1
	return fmt.Sprintf("%06d", s.last), 0
}
