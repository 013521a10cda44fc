package transit

import (
	"reflect"
	"testing"
)

func TestPositions(t *testing.T) {
	bj := purseOf("1000", "1000000000000001", 5000)
	sh := purseOf("2000", "2000000000000009", 5000)
	_, bjHome := taps(t, bj, 1, 300, "100000000007") // own gates: no position
	bj.Counter, bj.Balance = 1, 4700
	_, bjAway := taps(t, bj, 2, 400, "200000000001") // Beijing card on Shanghai gates
	_, shAway := taps(t, sh, 1, 250, "100000000007") // Shanghai card on Beijing gates
	day := func(d string, ts ...Tap) []Cleared {
		var out []Cleared
		for _, x := range ts {
			out = append(out, Cleared{Tap: x, Day: d})
		}
		return out
	}
	var in []Cleared
	in = append(in, day("20261205", bjAway[1])...)
	in = append(in, day("20261204", bjHome[0], bjAway[0], shAway[0])...)
	got := Positions(in)
	want := []Position{
		{Day: "20261204", Debtor: "1000", Creditor: "2000", Amount: 400, Taps: 1},
		{Day: "20261204", Debtor: "2000", Creditor: "1000", Amount: 250, Taps: 1},
		{Day: "20261205", Debtor: "1000", Creditor: "2000", Amount: 400, Taps: 1},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("positions %+v\nwant %+v", got, want)
	}
	if len(Positions(day("20261204", bjHome...))) != 0 {
		t.Fatal("a home tap made a position")
	}
}

// TestPositionsFromIngest: a resent file and a cloned card do not reach
// the positions.
func TestPositionsFromIngest(t *testing.T) {
	bj := purseOf("1000", "1000000000000001", 5000)
	_, away := taps(t, bj, 2, 400, "200000000001")
	clone := purseOf("1000", "1000000000000002", 5000)
	_, c1 := taps(t, clone, 1, 100, "200000000001")
	_, c2 := taps(t, clone, 1, 200, "200000000002")
	f := file(t, "sh-gate1", 1, append(away, c1...)...)
	r := Ingest(masters, []InFile{f, f, file(t, "sh-gate2", 1, c2...)}, nil)
	got := Positions(r.Cleared)
	want := []Position{{Day: "20261204", Debtor: "1000", Creditor: "2000", Amount: 800, Taps: 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v\n%s", got, r.Report())
	}
}
