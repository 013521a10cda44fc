package transit

import (
	"reflect"
	"testing"
)

func TestPositions(t *testing.T) {
	bj := purseOf("0010", "9910000100000000017", 5000)
	sh := purseOf("0021", "9910000200000000093", 5000)
	_, bjHome := taps(t, bj, 1, 300, "001000000007") // own gates: no position
	bj.Counter, bj.Balance = 1, 4700
	_, bjAway := taps(t, bj, 2, 400, "002100000001") // Beijing card on Shanghai gates
	_, shAway := taps(t, sh, 1, 250, "001000000007") // Shanghai card on Beijing gates
	day := func(d string, ts ...Tap) []Cleared {
		var out []Cleared
		for _, x := range ts {
			op, _ := cards.Of(x.Card)
			out = append(out, Cleared{Tap: x, Day: d, Operator: op})
		}
		return out
	}
	var in []Cleared
	in = append(in, day("20261205", bjAway[1])...)
	in = append(in, day("20261204", bjHome[0], bjAway[0], shAway[0])...)
	got := Positions(in)
	want := []Position{
		{Day: "20261204", Debtor: "0010", Creditor: "0021", Amount: 400, Taps: 1},
		{Day: "20261204", Debtor: "0021", Creditor: "0010", Amount: 250, Taps: 1},
		{Day: "20261205", Debtor: "0010", Creditor: "0021", Amount: 400, Taps: 1},
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
	bj := purseOf("0010", "9910000100000000017", 5000)
	_, away := taps(t, bj, 2, 400, "002100000001")
	clone := purseOf("0010", "9910000100000000025", 5000)
	_, c1 := taps(t, clone, 1, 100, "002100000001")
	_, c2 := taps(t, clone, 1, 200, "002100000002")
	f := file(t, "sh-gate1", 1, append(away, c1...)...)
	r := ingest([]InFile{f, f, file(t, "sh-gate2", 1, c2...)}, nil)
	got := Positions(r.Cleared)
	want := []Position{{Day: "20261204", Debtor: "0010", Creditor: "0021", Amount: 800, Taps: 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%+v\n%s", got, r.Report())
	}
}
