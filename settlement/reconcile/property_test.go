package reconcile

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement"
	"github.com/tapswitch/tapswitch/settlement/clearing"
)

// randomDay builds an issuer's ledger over three days and, from the same
// postings and by the rules of the package doc, the records of the middle
// day's file: a day on which both sides agree by construction. A posting
// reversed on the day gets both records or, as after a time-out, neither.
func randomDay(rng *rand.Rand) (ledger []LedgerEntry, details []clearing.Detail, notCleared int) {
	codes := []string{iso8583.ProcPurchase, iso8583.ProcRefund, iso8583.ProcTransitTopUp}
	days := []string{before, day, after, "20260316"}
	used := map[Key]bool{}
	for range rng.IntN(80) {
		// Few STANs and few times, so that keys share one half often.
		k := Key{STAN: fmt.Sprintf("%06d", rng.IntN(30)), TransmissionTime: fmt.Sprintf("03140200%02d", rng.IntN(5))}
		if used[k] {
			continue
		}
		used[k] = true
		pc := codes[rng.IntN(len(codes))]
		amount := iso8583.Amount(1 + rng.Int64N(int64(settlement.AmountMax)))
		posted := rng.IntN(3)
		e := posting(k.STAN, pc, amount, days[posted], "")
		e.TransmissionTime = k.TransmissionTime
		if rng.IntN(2) == 0 {
			e.Reversed, e.ReversalDay = true, days[posted+rng.IntN(2)]
		}
		ledger = append(ledger, e)
		var recs []bool // reversal flags of the day's records of e
		switch {
		case e.BusinessDay == day && e.ReversalDay == day:
			if rng.IntN(3) == 0 {
				notCleared++
			} else {
				recs = []bool{false, true}
			}
		case e.BusinessDay == day:
			recs = []bool{false}
		case e.ReversalDay == day:
			recs = []bool{true}
		}
		for _, reversal := range recs {
			d := record(k.STAN, pc, amount, reversal)
			d.IssuerTransmissionTime = k.TransmissionTime
			details = append(details, d)
		}
	}
	rng.Shuffle(len(details), func(i, j int) { details[i], details[j] = details[j], details[i] })
	rng.Shuffle(len(ledger), func(i, j int) { ledger[i], ledger[j] = ledger[j], ledger[i] })
	return ledger, numbered(details...), notCleared
}

func keyOf(d *clearing.Detail) Key {
	return Key{STAN: d.IssuerSTAN, TransmissionTime: d.IssuerTransmissionTime}
}

// TestRandomDaysAreClean: a day built from one set of postings has zero
// breaks, read through a real clearing file; and each single change to
// either side gives exactly the breaks it should.
func TestRandomDaysAreClean(t *testing.T) {
	rng := rand.New(rand.NewPCG(20260314, 11))
	for i := range 300 {
		ledger, details, notCleared := randomDay(rng)
		data, err := clearing.Encode(clearing.NewHeader(day, issuer, clearing.Issuer, "00010000"), details)
		if err != nil {
			t.Fatal(err)
		}
		f, err := clearing.Read(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		r, err := File(ledger, f)
		if err != nil {
			t.Fatal(err)
		}
		if !r.Clean() || r.ReversedNotCleared != notCleared || r.FileRecords != len(details) {
			t.Fatalf("day %d: %d breaks, %d not cleared (want %d):\n%s", i, len(r.Breaks), r.ReversedNotCleared, notCleared, r.Text())
		}
		if len(details) > 0 {
			checkMutations(t, rng, ledger, f.Details)
		}
	}
}

// mutation changes a clean day and says which breaks it must cause.
type mutation struct {
	name   string
	change func(l []LedgerEntry, ds []clearing.Detail, j int) ([]LedgerEntry, []clearing.Detail, []want)
}

var mutations = []mutation{
	{"drop a record", func(l []LedgerEntry, ds []clearing.Detail, j int) ([]LedgerEntry, []clearing.Detail, []want) {
		d := ds[j]
		return l, slices.Delete(ds, j, j+1), []want{{Missing, d.IssuerSTAN, d.Reversal, ""}}
	}},
	{"change a record's amount", func(l []LedgerEntry, ds []clearing.Detail, j int) ([]LedgerEntry, []clearing.Detail, []want) {
		if ds[j].Amount > 1 {
			ds[j].Amount--
		} else {
			ds[j].Amount++
		}
		return l, ds, []want{{AmountDiffers, ds[j].IssuerSTAN, ds[j].Reversal, ""}}
	}},
	{"repeat a record", func(l []LedgerEntry, ds []clearing.Detail, j int) ([]LedgerEntry, []clearing.Detail, []want) {
		d := ds[j]
		d.Seq = uint64(len(ds) + 1)
		return l, append(ds, d), []want{{Extra, d.IssuerSTAN, d.Reversal, ""}}
	}},
	{"drop the ledger entry", func(l []LedgerEntry, ds []clearing.Detail, j int) ([]LedgerEntry, []clearing.Detail, []want) {
		k := keyOf(&ds[j])
		l = slices.DeleteFunc(l, func(e LedgerEntry) bool { return e.Key() == k })
		return l, ds, wantForKey(ds, k, Extra)
	}},
	{"flip the ledger entry's direction", func(l []LedgerEntry, ds []clearing.Detail, j int) ([]LedgerEntry, []clearing.Detail, []want) {
		k := keyOf(&ds[j])
		for i := range l {
			if l[i].Key() == k {
				l[i].Direction, l[i].ProcessingCode = l[i].Direction.Opposite(), ""
			}
		}
		return l, ds, wantForKey(ds, k, DirectionDiffers)
	}},
}

// wantForKey is one break of kind per record with key k, original first.
func wantForKey(ds []clearing.Detail, k Key, kind Kind) []want {
	var out []want
	for _, reversal := range []bool{false, true} {
		for i := range ds {
			if keyOf(&ds[i]) == k && ds[i].Reversal == reversal {
				out = append(out, want{kind, k.STAN, reversal, ""})
			}
		}
	}
	return out
}

func checkMutations(t *testing.T, rng *rand.Rand, ledger []LedgerEntry, details []clearing.Detail) {
	t.Helper()
	for _, m := range mutations {
		j := rng.IntN(len(details))
		l, ds, wants := m.change(slices.Clone(ledger), slices.Clone(details), j)
		r, err := Day(day, l, ds)
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		got := make([]want, len(r.Breaks))
		for i, b := range r.Breaks {
			got[i] = want{b.Kind, b.Key.STAN, b.Reversal, ""}
		}
		if !slices.Equal(got, wants) {
			t.Fatalf("%s (record %d): got breaks %v, want %v\n%s", m.name, j, got, wants, r.Text())
		}
	}
}
