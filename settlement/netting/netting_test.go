package netting

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/settlement"
	"github.com/tapswitch/tapswitch/settlement/fees"
	"github.com/tapswitch/tapswitch/settlement/internal/testday"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func members() []Member {
	var out []Member
	for _, is := range testday.Members() {
		out = append(out, Member{Institution: is.Institution, Name: is.ID})
	}
	return out
}

func net(t testing.TB, txns []settlement.Txn) Report {
	t.Helper()
	n, err := New(testday.Day, testday.Switch, members())
	if err != nil {
		t.Fatal(err)
	}
	sched := testday.Schedule()
	for _, tx := range txns {
		f, err := sched.For(&tx)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Add(&tx, f); err != nil {
			t.Fatal(err)
		}
	}
	return n.Report()
}

func TestReportGolden(t *testing.T) {
	r := net(t, testday.Txns())
	for _, g := range []struct {
		file string
		got  []byte
	}{
		{"report-" + testday.Day + ".txt", r.Text()},
		{"report-" + testday.Day + ".json", r.JSON()},
	} {
		path := filepath.Join("testdata", g.file)
		if *update {
			if err := os.WriteFile(path, g.got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(g.got, want) {
			t.Errorf("%s differs (run with -update if the change is meant):\n%s", path, g.got)
		}
	}
	again := net(t, testday.Txns())
	if !bytes.Equal(again.Text(), r.Text()) || !bytes.Equal(again.JSON(), r.JSON()) {
		t.Error("a second run gave other bytes")
	}
	var back Report
	if err := json.Unmarshal(r.JSON(), &back); err != nil || back.Total.Net != 0 || len(back.Positions) != len(r.Positions) {
		t.Errorf("JSON does not read back: %v", err)
	}
}

// TestSampleDayPositions checks the sample day's positions worked out by
// hand. ICBC's cardholders spend (12345 + 10000 + 25000 + 500000) and get
// 5000 back; the 88800 purchase is reversed.
func TestSampleDayPositions(t *testing.T) {
	r := net(t, testday.Txns())
	pos := map[string]Position{}
	for _, p := range r.Positions {
		pos[p.Institution] = p
	}
	icbc, cmb, sw := pos[testday.ICBC], pos[testday.CMB], pos[testday.Switch]
	// ICBC: as issuer pays 547345, receives 5000; receives interchange
	// 43+10+113+1300 and, net of the reversal, 0 on the 88800; pays the
	// refund's 23. As acquirer of the 200 fen transit fare it receives 200
	// and pays 0 interchange. Switch fees 4+2+3+8+150 as issuer, 1 as acquirer.
	wantICBC := iso8583.Amount(-547345 + 5000 + (43 + 10 + 113 + 1300) - 23 - (4 + 2 + 3 + 8 + 150) + 200 - 1)
	if icbc.Net != wantICBC {
		t.Errorf("ICBC net %d, want %d", icbc.Net, wantICBC)
	}
	// CMB: acquirer of everything but the fare; issuer of its own on-us card.
	wantCMB := iso8583.Amount(547345-5000-(43+10+113+1300)+23-(4+2+3+8+150)) + (-1500 - 1500)
	if cmb.Net != wantCMB {
		t.Errorf("CMB net %d, want %d", cmb.Net, wantCMB)
	}
	if sw.Net != 2*(4+2+3+8+150+1+1500) || sw.Member != SwitchName {
		t.Errorf("switch %+v", sw)
	}
	if pos["31000001"].Net != -200+0-1 {
		t.Errorf("BJT net %d", pos["31000001"].Net)
	}
	if p, ok := pos["03100000"]; !ok || p != (Position{Institution: "03100000", Member: "SPDB"}) {
		t.Errorf("idle member SPDB: %+v", p)
	}
	if r.Transactions != 9 || r.Total.Net != 0 {
		t.Errorf("%d transactions, total net %d", r.Transactions, r.Total.Net)
	}
}

// randomDay makes n random transactions between a few members, with
// refunds, top-ups, on-us cards, reversals (some of them alone, as of an
// earlier day's original) and the amount extremes.
func randomDay(rng *rand.Rand, n int) []settlement.Txn {
	insts := []string{"01020000", "01030000", "03080000", "31000001", "48020000"}
	products := []bintable.Product{"debit", "credit", "transit"}
	mccs := []string{"5411", "5812", "4111", "8062", "5999"}
	codes := []string{iso8583.ProcPurchase, iso8583.ProcRefund, iso8583.ProcTransitTopUp}
	var out []settlement.Txn
	for i := range n {
		amount := iso8583.Amount(rng.Int64N(2_000_000) + 1)
		switch rng.IntN(20) {
		case 0:
			amount = 1
		case 1:
			amount = settlement.AmountMax
		}
		t := settlement.Txn{
			BusinessDay: testday.Day, NodeID: "node-1", Seq: uint64(i + 1), Time: time.Unix(1_773_400_000, 0),
			MTI: "0200", ProcessingCode: codes[rng.IntN(3)], Amount: amount, Currency: "156",
			TerminalID: fmt.Sprintf("T%07d", rng.IntN(50)), STAN: fmt.Sprintf("%06d", i), TransmissionTime: "0314101010",
			RRN: "R1", MerchantID: "M1", MCC: mccs[rng.IntN(len(mccs))], Acquirer: insts[rng.IntN(len(insts))],
			IssuerID: "X", IssuerInstitution: insts[rng.IntN(len(insts))], Product: products[rng.IntN(3)],
			Token: "6299900000000000018", PAN: "6222020000000001234", StandIn: rng.IntN(10) == 0,
			IssuerSTAN: fmt.Sprintf("%06d", i%1_000_000), IssuerTransmissionTime: "0314101011",
		}
		t.Direction, _ = settlement.DirectionOf(t.ProcessingCode)
		if rng.IntN(4) == 0 {
			t = reversalOf(t, uint64(n+i+1))
		}
		out = append(out, t)
		if !t.Reversal && rng.IntN(5) == 0 {
			out = append(out, reversalOf(t, uint64(2*n+i+1)))
		}
	}
	return out
}

// reversalOf returns the reversal of o; a reversal is not reversed again,
// so for one it returns o itself.
func reversalOf(o settlement.Txn, seq uint64) settlement.Txn {
	if o.Reversal {
		return o
	}
	r := o
	r.Seq, r.MTI, r.Reversal, r.Direction = seq, "0400", true, o.Direction.Opposite()
	r.STAN = fmt.Sprintf("9%05d", seq%100000)
	r.Original = o.Key()
	return r
}

// TestRandomDaysBalance: for many random days the positions sum to zero
// (Report panics otherwise) and every member's columns add up to its net.
func TestRandomDaysBalance(t *testing.T) {
	rng := rand.New(rand.NewPCG(20260314, 5))
	for day := range 200 {
		txns := randomDay(rng, 1+rng.IntN(300))
		r := net(t, txns)
		var sum iso8583.Amount
		for _, p := range r.Positions {
			sum += p.Net
		}
		if sum != 0 || r.Total.Net != 0 || r.Transactions != int64(len(txns)) {
			t.Fatalf("day %d: positions sum to %d", day, sum)
		}
	}
}

// TestEverythingReversedNetsToZero: a day where every transaction is
// reversed leaves every member, and the switch, at exactly zero.
func TestEverythingReversedNetsToZero(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for range 50 {
		var txns []settlement.Txn
		for i, o := range randomDay(rng, 100) {
			if o.Reversal {
				continue
			}
			txns = append(txns, o, reversalOf(o, uint64(10_000+i)))
		}
		for _, p := range net(t, txns).Positions {
			if p.Net != 0 || p.SwitchFeesPaid != 0 || p.SwitchFeesReceived != 0 || p.InterchangePaid != p.InterchangeReceived ||
				p.IssuerDebits != p.IssuerCredits || p.AcquirerDebits != p.AcquirerCredits {
				t.Fatalf("position not zero: %+v", p)
			}
		}
	}
}

func TestAddErrors(t *testing.T) {
	n, err := New(testday.Day, testday.Switch, members())
	if err != nil {
		t.Fatal(err)
	}
	good := testday.Txns()[0]
	tests := []struct {
		name    string
		edit    func(t *settlement.Txn, f *fees.Fees)
		wantHas string
	}{
		{"other day", func(t *settlement.Txn, f *fees.Fees) { t.BusinessDay = "20260315" }, "business day"},
		{"switch as bank", func(t *settlement.Txn, f *fees.Fees) { t.Acquirer = testday.Switch }, "switch's institution"},
		{"negative fee", func(t *settlement.Txn, f *fees.Fees) { f.Switch = -1 }, "fees"},
		{"invalid txn", func(t *settlement.Txn, f *fees.Fees) { t.Direction = settlement.Credit }, "Direction"},
	}
	for _, tc := range tests {
		tx, f := good, fees.Fees{Interchange: 1, Switch: 1}
		tc.edit(&tx, &f)
		if err := n.Add(&tx, f); err == nil || !strings.Contains(err.Error(), tc.wantHas) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.wantHas)
		}
	}
	if r := n.Report(); r.Transactions != 0 {
		t.Errorf("refused transactions were counted: %d", r.Transactions)
	}
}

func TestVolumeLimit(t *testing.T) {
	n, err := New(testday.Day, testday.Switch, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx := testday.Txns()[0]
	tx.Amount = settlement.AmountMax
	f := fees.Fees{Interchange: settlement.AmountMax, Switch: settlement.AmountMax}
	var added int
	for ; added < 1_000_000; added++ {
		if err := n.Add(&tx, f); err != nil {
			if !strings.Contains(err.Error(), "volume") {
				t.Fatal(err)
			}
			break
		}
	}
	if added != 250_000 { // 4 * (10^12 - 1) fen per transaction, up to 10^18 - 1
		t.Errorf("added %d before the limit", added)
	}
	n.Report() // still balances
}

func TestNewErrors(t *testing.T) {
	if _, err := New("2026-03-14", testday.Switch, nil); err == nil {
		t.Error("bad day accepted")
	}
	if _, err := New(testday.Day, "", nil); err == nil {
		t.Error("no switch accepted")
	}
	if _, err := New(testday.Day, testday.Switch, []Member{{Institution: testday.Switch, Name: "X"}}); err == nil {
		t.Error("member with the switch's institution accepted")
	}
	if _, err := New(testday.Day, testday.Switch, []Member{{Institution: "1", Name: "A"}, {Institution: "1", Name: "B"}}); err == nil {
		t.Error("member listed twice accepted")
	}
}

// TestReportPanicsWhenUnbalanced breaks a position behind Add's back: a day
// that does not balance must stop settlement, not be reported.
func TestReportPanicsWhenUnbalanced(t *testing.T) {
	for _, breakIt := range []func(p *Position){
		func(p *Position) { p.Net++ },
		func(p *Position) { p.InterchangePaid++; p.Net-- },
	} {
		n, err := New(testday.Day, testday.Switch, members())
		if err != nil {
			t.Fatal(err)
		}
		breakIt(n.pos[testday.ICBC])
		func() {
			defer func() {
				msg, _ := recover().(string)
				if !strings.Contains(msg, "does not balance") {
					t.Errorf("recovered %q", msg)
				}
			}()
			n.Report()
		}()
	}
}

// TestTransitFares: fares between operators net with the bank traffic of
// the day: the debtor's position falls and the creditor's rises by the
// fares, the positions still sum to zero, and the reports show them.
func TestTransitFares(t *testing.T) {
	const bjt, sptc = testday.BJT, "31000002"
	n, err := New(testday.Day, testday.Switch, members())
	if err != nil {
		t.Fatal(err)
	}
	if err := n.AddTransit(bjt, sptc, 300, 1); err == nil {
		t.Fatal("fares on a day without EnableTransit")
	}
	n.EnableTransit()
	sched := testday.Schedule()
	for _, tx := range testday.Txns() {
		f, _ := sched.For(&tx)
		if err := n.Add(&tx, f); err != nil {
			t.Fatal(err)
		}
	}
	before := n.Report()
	for _, bad := range []struct {
		d, c   string
		amount iso8583.Amount
		taps   int64
	}{
		{bjt, bjt, 300, 1},
		{bjt, testday.Switch, 300, 1},
		{bjt, sptc, 0, 0},
		{bjt, sptc, 2, 3},
		{bjt, "x", 300, 1},
	} {
		if err := n.AddTransit(bad.d, bad.c, bad.amount, bad.taps); err == nil {
			t.Errorf("AddTransit%v accepted", bad)
		}
	}
	if err := n.AddTransit(bjt, sptc, 700, 2); err != nil {
		t.Fatal(err)
	}
	if err := n.AddTransit(sptc, bjt, 200, 1); err != nil {
		t.Fatal(err)
	}
	r := n.Report() // panics unless the positions sum to zero
	pos := map[string]Position{}
	for _, p := range r.Positions {
		pos[p.Institution] = p
	}
	was := map[string]Position{}
	for _, p := range before.Positions {
		was[p.Institution] = p
	}
	if pos[bjt].Net-was[bjt].Net != -500 || pos[sptc].Net-was[sptc].Net != 500 {
		t.Fatalf("BJT moved %d, SPTC %d; want -500 and +500", pos[bjt].Net-was[bjt].Net, pos[sptc].Net-was[sptc].Net)
	}
	if p := pos[bjt]; p.TransitPaid != 700 || p.TransitTapsPaid != 2 || p.TransitReceived != 200 || p.TransitTapsReceived != 1 {
		t.Fatalf("BJT %+v", p)
	}
	if r.TransitTaps != 3 || r.Total.Net != 0 || r.Total.TransitPaid != 900 {
		t.Fatalf("report transit taps %d total %+v", r.TransitTaps, r.Total)
	}
	if !bytes.Contains(r.Text(), []byte("TRANSIT FARES BETWEEN OPERATORS (3 taps")) || !bytes.Contains(r.JSON(), []byte(`"transit_paid_fen": 700`)) {
		t.Fatalf("reports:\n%s\n%s", r.Text(), r.JSON())
	}
	if bytes.Contains(before.JSON(), []byte("transit_paid")) {
		t.Fatal("a member without fares shows transit columns in JSON")
	}
}
