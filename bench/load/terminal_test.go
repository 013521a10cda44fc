package load

import (
	"testing"

	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/iso8583"
)

// TestTerminalIDs: the fleet is the range configs/acquirers.yaml registers.
func TestTerminalIDs(t *testing.T) {
	for k, want := range map[int]string{0: "B0000000", 1: "B0000001", connectionsMax: "B0004096"} {
		if id := terminalID(k); id != want {
			t.Errorf("terminal %d: %q, want %q", k, id, want)
		}
	}
}

func testPlan(t *testing.T, mix string) *plan {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Mix, _ = ParseMix(mix)
	w := wallet.File{Cards: []wallet.Card{
		{Label: "approve", Token: "6299901111111116", TokenExpiry: "2912", Outcome: "00"},
		{Label: "insufficient", Token: "6299902222222224", TokenExpiry: "2912", Outcome: "51"},
		{Label: "expired", Token: "6299903333333332", TokenExpiry: "2401", Outcome: "54"},
		{Label: "suspended", Token: "6299904444444440", TokenExpiry: "2912", Outcome: "62"},
		{Label: "unknown", Token: "6299905555555557", TokenExpiry: "2912", Outcome: "14"},
	}}
	p, err := newPlan(cfg, Target{Wallet: w})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBuildRequests(t *testing.T) {
	p := testPlan(t, DefaultMix+",reversal=1")
	term := newTerminal("BTST0001", nil, nil, 41, newStats())
	term.remember(original{stan: "000007", transmissionTime: "1125083015", amount: 100}) // for the refund
	for _, tc := range []struct {
		kind         Kind
		mti, pc, amt string
	}{
		{KindPurchase, "0200", "000000", "000000000100"},
		{KindRefund, "0200", "200000", "000000000100"},
		{KindTopUp, "0200", "210000", "000000000100"},
	} {
		r := mustBuild(t, term, p, tc.kind)
		got := [...]string{field(r, 0), field(r, iso8583.FieldProcessingCode), field(r, iso8583.FieldAmount)}
		if got != [...]string{tc.mti, tc.pc, tc.amt} || r.want != "00" || field(r, iso8583.FieldTerminalID) != "BTST0001" {
			t.Errorf("%s: %v want %s", tc.kind, got, r.want)
		}
	}
	wants := map[string]bool{}
	for range 4 {
		r := mustBuild(t, term, p, KindDecline)
		wants[r.want] = true
		if field(r, iso8583.FieldAmount) != "000001000000" {
			t.Errorf("decline amount %s", field(r, iso8583.FieldAmount))
		}
	}
	if len(wants) != 4 || !wants["51"] || !wants["54"] || !wants["62"] || !wants["14"] {
		t.Errorf("four declines want %v", wants)
	}
	// STANs so far: 42..48; every request its own. With no purchase left
	// to name, a refund is sent as a purchase.
	if r := mustBuild(t, term, p, KindRefund); field(r, iso8583.FieldSTAN) != "000049" || r.kind != KindPurchase {
		t.Errorf("STAN %s kind %s, want 000049 and a purchase", field(r, iso8583.FieldSTAN), r.kind)
	}
}

func TestRefundNamesItsOriginal(t *testing.T) {
	p := testPlan(t, "purchase=1,refund=1")
	term := newTerminal("BTST0004", nil, nil, 0, newStats())
	purchase := mustBuild(t, term, p, KindPurchase)
	term.remember(purchase.orig)
	r := mustBuild(t, term, p, KindRefund)
	want := "0200" + field(purchase, iso8583.FieldSTAN) + field(purchase, iso8583.FieldTransmissionTime) + "00001020000" + "00000000000"
	if r.kind != KindRefund || field(r, iso8583.FieldProcessingCode) != "200000" || field(r, iso8583.FieldOriginalData) != want ||
		field(r, iso8583.FieldAmount) != field(purchase, iso8583.FieldAmount) {
		t.Fatalf("refund %s DE3 %s DE90 %q amount %s, want DE90 %q and the purchase's amount", r.kind,
			field(r, iso8583.FieldProcessingCode), field(r, iso8583.FieldOriginalData), field(r, iso8583.FieldAmount), want)
	}
}

func TestReversalNamesItsOriginal(t *testing.T) {
	p := testPlan(t, "purchase=1,reversal=1")
	term := newTerminal("BTST0002", nil, nil, 0, newStats())
	if r := mustBuild(t, term, p, KindReversal); r.kind != KindPurchase {
		t.Fatalf("a reversal with nothing to reverse is sent as %s, want a purchase", r.kind)
	}
	purchase := mustBuild(t, term, p, KindPurchase)
	term.remember(purchase.orig)
	rev := mustBuild(t, term, p, KindReversal)
	if rev.kind != KindReversal || rev.want != "00" || field(rev, 0) != "0400" {
		t.Fatalf("reversal %s mti %s want %s", rev.kind, field(rev, 0), rev.want)
	}
	de7 := field(purchase, iso8583.FieldTransmissionTime)
	wantDE90 := "0200" + field(purchase, iso8583.FieldSTAN) + de7 + "00001020000" + "00000000000"
	if got := field(rev, iso8583.FieldOriginalData); got != wantDE90 || len(got) != 42 {
		t.Fatalf("DE90 %q, want %q", got, wantDE90)
	}
	if field(rev, iso8583.FieldSTAN) == field(purchase, iso8583.FieldSTAN) ||
		field(rev, iso8583.FieldRRN) != field(purchase, iso8583.FieldRRN) ||
		field(rev, iso8583.FieldAmount) != field(purchase, iso8583.FieldAmount) ||
		field(rev, iso8583.FieldPAN) != p.approve.Token {
		t.Fatal("reversal does not carry its own STAN with the original's RRN, amount and token")
	}
	for _, id := range []int{iso8583.FieldExpiry, iso8583.FieldPOSEntryMode, iso8583.FieldMerchantNameLocation} {
		if field(rev, id) != "" {
			t.Errorf("reversal carries DE%d, which docs/wire.md leaves out of a 0400", id)
		}
	}
	if _, err := iso8583.Unpack(rev.payload); err != nil {
		t.Fatalf("reversal does not unpack with moov: %v", err)
	}
	if _, ok := term.popReversible(); ok {
		t.Fatal("the original can be reversed twice")
	}
}

func TestReversibleIsBounded(t *testing.T) {
	term := newTerminal("BTST0003", nil, nil, 0, newStats())
	for i := range reversibleMax + 10 {
		term.remember(original{stan: string(rune('0' + i%10))})
	}
	if len(term.reversible) != reversibleMax {
		t.Fatalf("%d remembered", len(term.reversible))
	}
}

func TestPlanNeedsDemoWallet(t *testing.T) {
	cfg := DefaultConfig()
	if _, err := newPlan(cfg, Target{Wallet: wallet.File{Cards: []wallet.Card{{Label: "approve", Token: "1"}}}}); err == nil {
		t.Fatal("plan from a wallet without outcomes")
	}
}

func mustBuild(t *testing.T, term *terminal, p *plan, k Kind) request {
	t.Helper()
	r, err := term.build(p, k)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// field reads data element id (0: the MTI) of r's payload with moov, the
// oracle of the codec that packed it.
func field(r request, id int) string {
	m, err := iso8583.Unpack(r.payload)
	if err != nil {
		panic(err)
	}
	if id == 0 {
		mti, _ := m.GetMTI()
		return mti
	}
	return iso8583.FieldValue(m, id)
}
