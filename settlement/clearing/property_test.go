package clearing

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/settlement"
	"github.com/tapswitch/tapswitch/settlement/internal/testday"
	"github.com/tapswitch/tapswitch/settlement/netting"
)

// randomText is printable ASCII of n characters that does not end in a space.
func randomText(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(0x20 + rng.IntN(0x5f))
	}
	if b[n-1] == ' ' {
		b[n-1] = '~'
	}
	return string(b)
}

func randomDigits(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + rng.IntN(10))
	}
	return string(b)
}

// randomDetail is a valid record with fields at random widths, up to each
// field's full width, for an issuer file of inst.
func randomDetail(rng *rand.Rand, inst, node string, seq uint64) Detail {
	mtis := []string{"0100", "0200", "0220", "0400", "0420"}
	codes := []string{"000000", "200000", "210000"}
	d := Detail{
		NodeID: node, JournalSeq: seq, MTI: mtis[rng.IntN(5)], ProcessingCode: codes[rng.IntN(3)],
		Amount: iso8583.Amount(1 + rng.Int64N(int64(settlement.AmountMax))), Currency: "156",
		Interchange: iso8583.Amount(rng.Int64N(1_000_000)), SwitchFee: iso8583.Amount(rng.Int64N(1_000)),
		Time:             time.Unix(rng.Int64N(1<<33), 0).UTC(),
		TransmissionTime: randomDigits(rng, 10), STAN: randomDigits(rng, 6), RRN: randomText(rng, 1+rng.IntN(12)),
		TerminalID: randomText(rng, 1+rng.IntN(8)), MerchantID: randomText(rng, 1+rng.IntN(15)),
		MCC: randomDigits(rng, 4), Acquirer: randomDigits(rng, 1+rng.IntN(11)),
		IssuerID: randomText(rng, 1+rng.IntN(12)), IssuerInstitution: inst,
		Product:    []bintable.Product{"debit", "credit", "transit"}[rng.IntN(3)],
		CardNumber: iso8583.PAN(randomDigits(rng, 12+rng.IntN(8))), StandIn: rng.IntN(2) == 0,
		IssuerSTAN: randomDigits(rng, 6), IssuerTransmissionTime: randomDigits(rng, 10),
	}
	if rng.IntN(3) > 0 {
		d.AuthCode = randomText(rng, 1+rng.IntN(6))
	}
	d.Reversal, _ = settlement.ClassifyMTI(d.MTI)
	d.Direction, _ = settlement.DirectionOf(d.ProcessingCode)
	if d.Reversal {
		d.Direction = d.Direction.Opposite()
		d.OriginalSTAN, d.OriginalTransmissionTime = randomDigits(rng, 6), randomDigits(rng, 10)
		if d.OriginalSTAN == d.STAN {
			d.OriginalSTAN = fmt.Sprintf("%06d", (int(d.STAN[5]-'0')+1)%10)
		}
	}
	return d
}

// TestRandomFilesRoundTrip: random valid records, written and read back,
// come back equal, and the file writes back to the same bytes.
func TestRandomFilesRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		inst := randomDigits(rng, 1+rng.IntN(11))
		var details []Detail
		nodes := []string{randomText(rng, 1+rng.IntN(32)), randomText(rng, 1+rng.IntN(32)), randomText(rng, 1+rng.IntN(32))}
		slices.Sort(nodes)
		for _, name := range slices.Compact(nodes) {
			var seq uint64
			for range rng.IntN(40) {
				seq += 1 + rng.Uint64N(1<<40)
				d := randomDetail(rng, inst, name, seq)
				d.Seq = uint64(len(details) + 1)
				details = append(details, d)
			}
		}
		h := NewHeader(testday.Day, inst, Issuer, "00010000"+fmt.Sprint(rng.IntN(10)))
		data, err := Encode(h, details)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Read(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
		if f.Header != h || !reflect.DeepEqual(f.Details, details) {
			t.Fatalf("read back differs")
		}
		if again, _ := Encode(f.Header, f.Details); !bytes.Equal(again, data) {
			t.Fatal("rewritten file differs")
		}
	}
}

// TestFilesAgreeWithNetting: for every member, the trailers of its issuer
// and acquirer files show the same gross amounts and interchange as its
// position in the net settlement report. The two are computed apart (one
// from records, one from transactions), so each checks the other.
func TestFilesAgreeWithNetting(t *testing.T) {
	n, err := netting.New(testday.Day, testday.Switch, nil)
	if err != nil {
		t.Fatal(err)
	}
	sched := testday.Schedule()
	for _, tx := range testday.Txns() {
		f, _ := sched.For(&tx)
		if err := n.Add(&tx, f); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range n.Report().Positions {
		if p.Institution == testday.Switch {
			continue
		}
		iss := readTrailer(t, p.Institution, Issuer)
		acq := readTrailer(t, p.Institution, Acquirer)
		got := []iso8583.Amount{iss.DebitTotal, iss.CreditTotal, acq.DebitTotal, acq.CreditTotal,
			iss.InterchangeDebits + acq.InterchangeCredits, iss.InterchangeCredits + acq.InterchangeDebits,
			iss.SwitchFeesCharged + acq.SwitchFeesCharged - iss.SwitchFeesRefunded - acq.SwitchFeesRefunded}
		want := []iso8583.Amount{p.IssuerDebits, p.IssuerCredits, p.AcquirerDebits, p.AcquirerCredits,
			p.InterchangeReceived, p.InterchangePaid, p.SwitchFeesPaid}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: files say %v, netting says %v", p.Institution, got, want)
		}
	}
}

func readTrailer(t *testing.T, inst string, role Role) Trailer {
	t.Helper()
	f, err := Read(bytes.NewReader(sampleFile(t, inst, role)))
	if err != nil {
		t.Fatal(err)
	}
	return f.Trailer
}
