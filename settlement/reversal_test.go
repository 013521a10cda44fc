package settlement

import (
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// pair returns a purchase and its reversal.
func pair(t *testing.T) (Txn, Txn) {
	t.Helper()
	p := entry("0200", iso8583.ProcPurchase, 1000)
	purchase, err := FromEntry(&p, supplied())
	if err != nil {
		t.Fatal(err)
	}
	r := entry("0400", iso8583.ProcPurchase, 1000)
	r.Seq, r.STAN = 8, "000200"
	s := supplied()
	s.Original = purchase.Key()
	reversal, err := FromEntry(&r, s)
	if err != nil {
		t.Fatal(err)
	}
	return purchase, reversal
}

func TestMatcherErrors(t *testing.T) {
	tests := []struct {
		name    string
		txns    func(p, r Txn) []Txn
		wantHas string
	}{
		{"same key twice", func(p, r Txn) []Txn { q := p; q.Seq = 99; return []Txn{p, q} }, "same key"},
		{"reversed twice", func(p, r Txn) []Txn { q := r; q.Seq = 99; return []Txn{p, r, q} }, "both reverse"},
		{"amount differs", func(p, r Txn) []Txn { r.Amount = 999; return []Txn{p, r} }, "amount 999, original 1000"},
		{"amount differs, reversal first", func(p, r Txn) []Txn { r.Amount = 999; return []Txn{r, p} }, "amount 999, original 1000"},
		{"other acquirer", func(p, r Txn) []Txn { r.Acquirer = "01050000"; return []Txn{p, r} }, "acquirer"},
		{"other MCC", func(p, r Txn) []Txn { r.MCC = "5999"; return []Txn{p, r} }, "MCC"},
		{"other issuer STAN", func(p, r Txn) []Txn { r.IssuerSTAN = "000008"; return []Txn{p, r} }, "issuer STAN 000008, original 000007"},
		{"other issuer time", func(p, r Txn) []Txn { r.IssuerTransmissionTime = "0314020002"; return []Txn{r, p} }, "issuer transmission time"},
		{"other code", func(p, r Txn) []Txn {
			r.ProcessingCode, r.Direction = iso8583.ProcRefund, Debit
			return []Txn{p, r}
		}, "processing code"},
	}
	for _, tc := range tests {
		p, r := pair(t)
		m := NewMatcher()
		var err error
		for _, tx := range tc.txns(p, r) {
			if err = m.Add(&tx); err != nil {
				break
			}
		}
		if err == nil || !strings.Contains(err.Error(), tc.wantHas) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.wantHas)
		}
	}
}

func TestMatcherUnmatched(t *testing.T) {
	_, r := pair(t)
	m := NewMatcher()
	other := r
	other.Seq, other.STAN, other.Original.STAN = 10, "000201", "000001"
	for _, tx := range []Txn{r, other} {
		if err := m.Add(&tx); err != nil {
			t.Fatal(err)
		}
	}
	got := m.Unmatched()
	want := []journal.Key{other.Original, r.Original}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("Unmatched = %v, want %v (sorted)", got, want)
	}
}
