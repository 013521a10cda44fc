package transit

import (
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
)

// Operators says which operator issued a transit card. A card's operator
// is not in its number: the card's BIN routes it to a transit member (the
// BIN table, configs/bins.yaml) and that member has an operator code
// (configs/issuers.yaml). Gate IDs, by contrast, do begin with their
// operator's code (GateOperator).
type Operators struct {
	of func(card string) (string, bool)
}

// NewOperators builds the look-up from the network's BIN table and its
// members: a card is known when its longest BIN prefix is a transit row
// whose issuer is a transit member with an operator code.
func NewOperators(table *bintable.Table, members []issuers.Issuer) Operators {
	codes := map[string]string{}
	for _, m := range members {
		if m.Kind == issuers.KindTransit && ValidOperator(m.Operator) {
			codes[m.ID] = m.Operator
		}
	}
	return Operators{of: func(card string) (string, bool) {
		e, ok := table.Lookup(card)
		if !ok || e.Product != bintable.ProductTransit {
			return "", false
		}
		op, ok := codes[e.Issuer]
		return op, ok
	}}
}

// OperatorsFunc wraps a look-up of the caller's own.
func OperatorsFunc(of func(card string) (string, bool)) Operators { return Operators{of: of} }

// Of returns the operator code of card, false for a card no operator
// issued (or a malformed number).
func (o Operators) Of(card string) (string, bool) {
	if o.of == nil || !ValidCard(card) {
		return "", false
	}
	return o.of(card)
}
