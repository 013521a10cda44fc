package fees

import (
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/settlement"
)

func TestApplyBpsRounding(t *testing.T) {
	tests := []struct {
		amount iso8583.Amount
		bps    int64
		want   iso8583.Amount
	}{
		{0, 35, 0},
		{1, 4999, 0},    // 0.4999 fen rounds down
		{1, 5000, 1},    // 0.5 fen rounds up
		{3, 5000, 2},    // 1.5 rounds up, not to even
		{5, 5000, 3},    // 2.5 rounds up, not to even
		{4999, 1, 0},    // 0.4999
		{5000, 1, 1},    // 0.5
		{14999, 1, 1},   // 1.4999
		{15000, 1, 2},   // 1.5
		{142, 35, 0},    // 0.497
		{143, 35, 1},    // 0.5005
		{12345, 35, 43}, // 43.2075
		{10000, 0, 0},
		{10000, 10000, 10000},
		{1, 10000, 1},
		{settlement.AmountMax, 10000, settlement.AmountMax},
		{settlement.AmountMax, 1, 100_000_000}, // 99999999.9999
	}
	for _, tc := range tests {
		if got := ApplyBps(tc.amount, tc.bps); got != tc.want {
			t.Errorf("ApplyBps(%d, %d) = %d, want %d", tc.amount, tc.bps, got, tc.want)
		}
	}
}

func TestApplyBpsPanicsOutOfRange(t *testing.T) {
	for _, c := range []struct {
		a iso8583.Amount
		b int64
	}{{-1, 1}, {settlement.AmountMax + 1, 1}, {1, -1}, {1, BpsMax + 1}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("ApplyBps(%d, %d) did not panic", c.a, c.b)
				}
			}()
			ApplyBps(c.a, c.b)
		}()
	}
}

func TestRateCap(t *testing.T) {
	r := Rate{Bps: 35, Cap: 1300, Capped: true}
	tests := []struct{ amount, want iso8583.Amount }{
		{371_428, 1300}, // 1299.998 rounds to 1300, at the cap
		{371_443, 1300}, // 1300.5505 rounds to 1300
		{371_443 + 1, 1300},
		{371_572, 1300}, // 1300.502 would round to 1301: capped
		{1_000_000, 1300},
		{371_000, 1299}, // 1298.5 rounds up to 1299, under the cap
	}
	for _, tc := range tests {
		if got := r.Apply(tc.amount); got != tc.want {
			t.Errorf("Apply(%d) = %d, want %d", tc.amount, got, tc.want)
		}
	}
	if got := (Rate{Bps: 35}).Apply(1_000_000); got != 3500 {
		t.Errorf("uncapped: %d", got)
	}
	if got := (Rate{Bps: 35, Capped: true}).Apply(1_000_000); got != 0 {
		t.Errorf("cap 0: %d", got)
	}
}

func txn(p bintable.Product, mcc string, amount iso8583.Amount) *settlement.Txn {
	return &settlement.Txn{NodeID: "n", Seq: 1, Product: p, MCC: mcc, Amount: amount}
}

// TestDefaultSchedule prices with configs/fees.yaml.
func TestDefaultSchedule(t *testing.T) {
	s, err := Parse(configs.Fees)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		t      *settlement.Txn
		ic, sw iso8583.Amount
	}{
		{"debit 0.35 %", txn("debit", "5411", 12345), 43, 4},
		{"debit at the cap", txn("debit", "5999", 500_000), 1300, 150},
		{"credit, no cap", txn("credit", "5812", 10_000_000), 45_000, 3000},
		{"transit 0.20 %", txn("transit", "4111", 10_000), 20, 3},
		{"transit capped at 5 yuan", txn("transit", "4111", 1_000_000), 500, 300},
		{"MCC override to zero", txn("debit", "8062", 50_000), 0, 15},
		{"MCC override with its own cap", txn("credit", "5411", 5_000_000), 2500, 1500},
		{"MCC override for debit only", txn("credit", "4111", 10_000), 45, 3},
		{"override replaces product cap", txn("debit", "4111", 10_000), 10, 3},
		{"switch fee minimum", txn("transit", "4111", 200), 0, 1},
		{"switch fee just above minimum", txn("debit", "5411", 5000), 18, 2}, // 1.5 rounds up to 2
		{"switch fee rounds down", txn("debit", "5411", 4999), 17, 1},        // 1.4997
	}
	for _, tc := range tests {
		f, err := s.For(tc.t)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if f.Interchange != tc.ic || f.Switch != tc.sw {
			t.Errorf("%s: interchange %d switch %d, want %d and %d", tc.name, f.Interchange, f.Switch, tc.ic, tc.sw)
		}
	}
	if _, err := s.For(txn("prepaid", "5411", 100)); err == nil {
		t.Error("priced an unknown product")
	}
	if _, err := s.For(txn("debit", "5411", settlement.AmountMax+1)); err == nil {
		t.Error("priced an amount beyond 12 digits")
	}
}

const validDoc = `
interchange:
  debit: {bps: 35, cap_fen: 1300}
  credit: {bps: 45}
  transit: {bps: 20}
interchange_mcc:
  - {product: debit, mcc: "8062", bps: 0}
switch_fee: {bps: 3, min_fen: 1}
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, old, new, wantHas string
	}{
		{"bps above 10000", "credit: {bps: 45}", "credit: {bps: 10001}", "bps 10001"},
		{"negative bps", "credit: {bps: 45}", "credit: {bps: -1}", "bps -1"},
		{"missing bps", "credit: {bps: 45}", "credit: {cap_fen: 45}", "no bps"},
		{"unknown product", "credit: {bps: 45}", "prepaid: {bps: 45}", "unknown product"},
		{"missing product", "  credit: {bps: 45}\n", "", "no rate for product credit"},
		{"negative cap", "cap_fen: 1300", "cap_fen: -1", "cap_fen -1"},
		{"misspelt field", "cap_fen: 1300", "cap_fenn: 1300", "cap_fenn"},
		{"MCC of 3 digits", `mcc: "8062"`, `mcc: "806"`, "mcc"},
		{"MCC with a letter", `mcc: "8062"`, `mcc: "80a2"`, "mcc"},
		{"override of unknown product", "{product: debit, mcc", "{product: amex, mcc", "amex"},
		{"override listed twice", `  - {product: debit, mcc: "8062", bps: 0}`,
			"  - {product: debit, mcc: \"8062\", bps: 0}\n  - {product: debit, mcc: \"8062\", bps: 5}", "listed twice"},
		{"no switch fee", "switch_fee: {bps: 3, min_fen: 1}", "", "switch_fee"},
		{"switch fee without minimum", "{bps: 3, min_fen: 1}", "{bps: 3}", "min_fen"},
		{"negative minimum", "min_fen: 1", "min_fen: -5", "min_fen -5"},
		{"switch fee bps", "{bps: 3,", "{bps: 20000,", "bps 20000"},
		{"not YAML", "interchange:", "interchange: [", "fees:"},
	}
	if _, err := Parse([]byte(validDoc)); err != nil {
		t.Fatalf("valid document: %v", err)
	}
	for _, tc := range tests {
		doc := strings.Replace(validDoc, tc.old, tc.new, 1)
		if doc == validDoc {
			t.Fatalf("%s: %q not in the document", tc.name, tc.old)
		}
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), tc.wantHas) {
			t.Errorf("%s: got %v, want an error containing %q", tc.name, err, tc.wantHas)
		}
	}
}

// TestReversalFeesEqualOriginal: fees depend only on amount, product and
// MCC, which a reversal shares with its original, so they cancel exactly.
func TestReversalFeesEqualOriginal(t *testing.T) {
	s, err := Parse(configs.Fees)
	if err != nil {
		t.Fatal(err)
	}
	orig := txn("debit", "5411", 88800)
	rev := *orig
	rev.Reversal, rev.MTI, rev.Direction = true, "0400", settlement.Credit
	a, _ := s.For(orig)
	b, _ := s.For(&rev)
	if a != b {
		t.Errorf("original %+v, reversal %+v", a, b)
	}
}
