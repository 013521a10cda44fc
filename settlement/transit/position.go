package transit

import (
	"cmp"
	"slices"
)

// Position is what one operator owes another for one business day: the
// cards of Debtor tapped on the gates of Creditor. Gross per direction:
// netting A owes B against B owes A belongs to the daily net settlement
// (still to come), which also nets them with the bank traffic.
type Position struct {
	Day      string // business day, YYYYMMDD
	Debtor   string // the card's operator, who holds the purse's money
	Creditor string // the gate's operator, who carried the passenger
	Amount   int64  // fen
	Taps     int
}

// Positions sums cleared taps into inter-city positions, sorted by day,
// debtor and creditor. A tap on its own operator's gates is no position.
func Positions(cleared []Cleared) []Position {
	type key struct{ day, debtor, creditor string }
	sums := map[key]*Position{}
	for _, c := range cleared {
		k := key{c.Day, c.Operator, GateOperator(c.Gate)}
		if k.debtor == k.creditor {
			continue
		}
		p := sums[k]
		if p == nil {
			p = &Position{Day: k.day, Debtor: k.debtor, Creditor: k.creditor}
			sums[k] = p
		}
		p.Amount += c.Amount
		p.Taps++
	}
	out := make([]Position, 0, len(sums))
	for _, p := range sums {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b Position) int {
		return cmp.Or(cmp.Compare(a.Day, b.Day), cmp.Compare(a.Debtor, b.Debtor), cmp.Compare(a.Creditor, b.Creditor))
	})
	return out
}
