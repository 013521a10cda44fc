package gate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/settlement/transit"
)

const gateID = "100100000007"

var master = []byte("operator 1001 master key, 32 b..")

func newPurse(card string, balance int64) transit.Purse {
	return transit.Purse{Operator: "1001", Card: card, Balance: balance, Key: transit.PurseKey(master, card)}
}

var at = time.Date(2026, 12, 4, 8, 15, 0, 0, time.UTC)

// phone is the purse's side: it saves each debit before the tap leaves.
type phone struct {
	saved []transit.Purse
	fail  error
}

func (ph *phone) save(p transit.Purse) error {
	if ph.fail != nil {
		return ph.fail
	}
	ph.saved = append(ph.saved, p)
	return nil
}

// TestTwoTapsClearThroughTheOperator: two taps through the gate, its tap
// file, and the network's ingestion: both clear, with their TACs, and the
// phone saved each purse before the gate recorded the tap.
func TestTwoTapsClearThroughTheOperator(t *testing.T) {
	g, err := Open(t.TempDir(), gateID, 3_00)
	if err != nil {
		t.Fatal(err)
	}
	p := newPurse("1001000000000017", 10_00)
	var ph phone
	for i := range 2 {
		var tap transit.Tap
		if p, tap, err = g.Tap(p, ph.save, at.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
		if tap.Counter != uint16(i+1) || ph.saved[i] != p {
			t.Fatalf("tap %d: counter %d, phone saved %+v, purse %+v", i, tap.Counter, ph.saved[i], p)
		}
	}
	if p.Balance != 4_00 || g.Pending() != 2 {
		t.Fatalf("balance %d, pending %d", p.Balance, g.Pending())
	}
	path, err := g.WriteTapFile("20261204")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := transit.Ingest(map[string][]byte{"1001": master}, []transit.InFile{{Name: filepath.Base(path), Data: data}}, nil)
	if len(r.Cleared) != 2 || len(r.Rejections) != 0 || len(r.Gaps) != 0 || len(r.Blacklist) != 0 {
		t.Fatalf("ingestion: %s", r.Report())
	}
	if g.Pending() != 0 || !strings.HasSuffix(path, gateID+"-00000001.taps") {
		t.Fatalf("after the file: pending %d, path %s", g.Pending(), path)
	}
}

// TestRefusalsLeaveThePurseAndTheGateAlone: a blacklisted card, a short
// purse and a phone that cannot save are refused; nothing is debited or
// recorded.
func TestRefusalsLeaveThePurseAndTheGateAlone(t *testing.T) {
	g, err := Open(t.TempDir(), gateID, 3_00)
	if err != nil {
		t.Fatal(err)
	}
	var ph phone
	listed := newPurse("1001000000000025", 10_00)
	g.SetBlacklist([]string{listed.Card})
	short := newPurse("1001000000000033", 2_99)
	broken := &phone{fail: errors.New("disk full")}
	for _, c := range []struct {
		name  string
		p     transit.Purse
		save  func(transit.Purse) error
		want  error
		wantS string
	}{
		{"blacklisted", listed, ph.save, ErrBlacklisted, ""},
		{"short", short, ph.save, transit.ErrShort, ""},
		{"phone cannot save", newPurse("1001000000000041", 10_00), broken.save, nil, "could not save"},
	} {
		got, _, err := g.Tap(c.p, c.save, at)
		if err == nil || (c.want != nil && !errors.Is(err, c.want)) || !strings.Contains(err.Error(), c.wantS) {
			t.Errorf("%s: %v", c.name, err)
		}
		if got != c.p {
			t.Errorf("%s: purse changed to %+v", c.name, got)
		}
	}
	if g.Pending() != 0 || len(ph.saved) != 0 {
		t.Fatalf("refused taps recorded: pending %d, saved %d", g.Pending(), len(ph.saved))
	}
}

// TestReopenKeepsTapsAndSequence: a gate reopened (after a crash) still has
// the taps it let through and numbers its next file after the last; a tap
// line cut short by the crash is dropped.
func TestReopenKeepsTapsAndSequence(t *testing.T) {
	dir := t.TempDir()
	g, err := Open(dir, gateID, 3_00)
	if err != nil {
		t.Fatal(err)
	}
	var ph phone
	p := newPurse("1001000000000017", 10_00)
	if p, _, err = g.Tap(p, ph.save, at); err != nil {
		t.Fatal(err)
	}
	if _, err := g.WriteTapFile("20261204"); err != nil {
		t.Fatal(err)
	}
	if _, _, err = g.Tap(p, ph.save, at.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "pending.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"card":"1001000000000017","amo`)
	f.Close()

	again, err := Open(dir, gateID, 3_00)
	if err != nil {
		t.Fatal(err)
	}
	if again.Pending() != 1 {
		t.Fatalf("pending after reopen: %d, want 1", again.Pending())
	}
	if _, _, err := again.Tap(newPurse("1001000000000025", 10_00), ph.save, at.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if third, err := Open(dir, gateID, 3_00); err != nil || third.Pending() != 2 {
		t.Fatalf("a tap after the torn line: reopened with %v, err %v", third, err)
	}
	path, err := again.WriteTapFile("20261204")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, gateID+"-00000002.taps") {
		t.Fatalf("second file %s, want sequence 2", path)
	}
	if _, err := Open(dir, "100100000008", 3_00); err == nil {
		t.Fatal("a gate directory opened as another gate")
	}
}

// TestOpenRefusesBadGates: malformed IDs and fares are refused.
func TestOpenRefusesBadGates(t *testing.T) {
	for _, c := range []struct {
		id   string
		fare int64
	}{{"1001", 3_00}, {"10010000000X", 3_00}, {gateID, 0}, {gateID, -1}, {gateID, transit.AmountMax + 1}} {
		if _, err := Open(t.TempDir(), c.id, c.fare); err == nil {
			t.Errorf("gate %q fare %d opened", c.id, c.fare)
		}
	}
}
