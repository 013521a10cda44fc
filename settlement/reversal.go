package settlement

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// Matcher checks a day's reversals against their originals. A reversal
// cancels its original by itself (see the package doc), so matching decides
// no money; it catches the inputs that would make the cancelling wrong: a
// key used by two originals, an original reversed twice, and a reversal
// that disagrees with its original on anything that moves money or on the
// issuer-side trace (the issuer knows a reversal by its original's, see
// settlement/reconcile). Feed it every Txn of the day in any order.
//
// It holds a small summary per transaction, about 180 bytes, for the whole
// day; that is the one part of settlement whose memory grows with the day.
type Matcher struct {
	originals map[journal.Key]moneyFacts
	reversals map[journal.Key]moneyFacts // by the key of the original reversed
}

// moneyFacts is what a reversal must share with its original for the two
// to cancel exactly, amount and fees alike, and for the issuer to pair them
// in its books.
type moneyFacts struct {
	id                 string
	amount             iso8583.Amount
	processingCode     string
	acquirer, issuerIn string
	product            bintable.Product
	mcc                string
	issuerSTAN         string
	issuerTime         string
}

func factsOf(t *Txn) moneyFacts {
	return moneyFacts{id: t.ID(), amount: t.Amount, processingCode: t.ProcessingCode,
		acquirer: t.Acquirer, issuerIn: t.IssuerInstitution, product: t.Product, mcc: t.MCC,
		issuerSTAN: t.IssuerSTAN, issuerTime: t.IssuerTransmissionTime}
}

// NewMatcher returns an empty Matcher.
func NewMatcher() *Matcher {
	return &Matcher{originals: make(map[journal.Key]moneyFacts), reversals: make(map[journal.Key]moneyFacts)}
}

// Add records t and checks it against what was added before.
func (m *Matcher) Add(t *Txn) error {
	f := factsOf(t)
	if !t.Reversal {
		k := t.Key()
		if prev, dup := m.originals[k]; dup {
			return fmt.Errorf("settlement: %s and %s have the same key %s: a reversal could not tell them apart",
				prev.id, f.id, keyName(k))
		}
		m.originals[k] = f
		if r, ok := m.reversals[k]; ok {
			return agree(r, f)
		}
		return nil
	}
	if prev, dup := m.reversals[t.Original]; dup {
		return fmt.Errorf("settlement: %s and %s both reverse %s", prev.id, f.id, keyName(t.Original))
	}
	m.reversals[t.Original] = f
	if o, ok := m.originals[t.Original]; ok {
		return agree(f, o)
	}
	return nil
}

// agree checks a reversal r against its original o.
func agree(r, o moneyFacts) error {
	diffs := [...]struct{ name, r, o string }{
		{"amount", fmt.Sprint(int64(r.amount)), fmt.Sprint(int64(o.amount))},
		{"processing code", r.processingCode, o.processingCode},
		{"acquirer", r.acquirer, o.acquirer},
		{"issuer institution", r.issuerIn, o.issuerIn},
		{"product", string(r.product), string(o.product)},
		{"MCC", r.mcc, o.mcc},
		{"issuer STAN", r.issuerSTAN, o.issuerSTAN},
		{"issuer transmission time", r.issuerTime, o.issuerTime},
	}
	for _, d := range diffs {
		if d.r != d.o {
			return fmt.Errorf("settlement: reversal %s does not match its original %s: %s %s, original %s",
				r.id, o.id, d.name, d.r, d.o)
		}
	}
	return nil
}

// Unmatched returns the originals named by reversals that were not added,
// sorted: reversals of an earlier day's transactions. They settle all the
// same; the caller may want to confirm their originals in earlier files.
func (m *Matcher) Unmatched() []journal.Key {
	var out []journal.Key
	for k := range m.reversals {
		if _, ok := m.originals[k]; !ok {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b journal.Key) int {
		return cmp.Or(cmp.Compare(a.TerminalID, b.TerminalID), cmp.Compare(a.STAN, b.STAN),
			cmp.Compare(a.TransmissionTime, b.TransmissionTime))
	})
	return out
}

// Reversed reports whether a reversal of the transaction with key k was added.
func (m *Matcher) Reversed(k journal.Key) bool {
	_, ok := m.reversals[k]
	return ok
}

func keyName(k journal.Key) string {
	return fmt.Sprintf("terminal %s STAN %s time %s", k.TerminalID, k.STAN, k.TransmissionTime)
}
