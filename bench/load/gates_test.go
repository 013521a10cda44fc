package load

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/wallet"
)

// TestGateTaps: gate taps in the six cities leave a tap file per gate,
// every debit cleared by ingestion, with Beijing tap-ins and inter-city
// taps among them, and the wallet's purses saved.
func TestGateTaps(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)
	rep, err := runGateTaps(240, dir, start)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) != 0 {
		t.Fatalf("errors: %v", rep.Errors)
	}
	if rep.Taps != 240 || rep.Entries == 0 || rep.Debits+rep.Entries != rep.Taps || rep.Cleared != rep.Debits || rep.InterCity == 0 || len(rep.ByCity) != 6 {
		t.Fatalf("report %+v", rep)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*", "out", "*-00000001.taps"))
	if rep.TapFiles != 24 || len(files) != 24 {
		t.Fatalf("%d tap files reported, %d on disk", rep.TapFiles, len(files))
	}
	w, err := wallet.Load(filepath.Join(dir, "wallet.json"))
	if err != nil || len(w.Transit) != 6*gateCardsPerCity {
		t.Fatalf("wallet: %v, %d cards", err, len(w.Transit))
	}
	var spent int64
	for _, c := range w.Transit {
		spent += gatePurseBalance - c.Balance
	}
	if spent != rep.AmountFen {
		t.Fatalf("purses spent %d fen, gates took %d", spent, rep.AmountFen)
	}
	r := Report{Gate: rep}
	if s := r.Summary(); !strings.Contains(s, "gate taps    240 offline") {
		t.Fatalf("summary:\n%s", s)
	}
}

// TestGateInTheMix: gate is a kind of the mix but not of the switch's
// cycle, and its count follows the requests sent, bounded.
func TestGateInTheMix(t *testing.T) {
	m, err := ParseMix("purchase=80,decline=20,gate=10")
	if err != nil {
		t.Fatal(err)
	}
	if m.String() != "purchase=80,decline=20,gate=10" || !m.Has(KindGate) || len(m.Table()) != 100 {
		t.Fatalf("mix %s, table of %d", m, len(m.Table()))
	}
	for _, k := range m.Table() {
		if k == KindGate {
			t.Fatal("a gate tap in the switch's cycle")
		}
	}
	if m.GateTaps(1000) != 100 || m.GateTaps(0) != 0 || m.GateTaps(1_000_000) != GateTapsMax {
		t.Fatalf("gate taps %d %d %d", m.GateTaps(1000), m.GateTaps(0), m.GateTaps(1_000_000))
	}
	if d, _ := ParseMix(DefaultMix); d.GateTaps(1000) != 0 {
		t.Fatal("the default mix has gate taps")
	}
	if _, err := ParseFlags([]string{"-mix", "gate=10"}, os.Stdout, os.Stderr); err == nil || !strings.Contains(err.Error(), "no kind sent to the switch") {
		t.Fatalf("a mix of gate taps only: %v", err)
	}
}
