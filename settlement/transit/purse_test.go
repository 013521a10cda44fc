package transit

import (
	"encoding/hex"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testMaster = []byte("operator 0010 master key, test only")

func testPurse(balance int64, counter uint16) Purse {
	card := "9910000100000000017"
	return Purse{Operator: "0010", Card: card, Balance: balance, Counter: counter, Key: PurseKey(testMaster, card)}
}

var t0 = time.Date(2026, 12, 4, 8, 30, 15, 0, time.UTC)

func TestPurseKeyDependsOnMasterAndCard(t *testing.T) {
	a := PurseKey(testMaster, "9910000100000000017")
	if a == PurseKey(testMaster, "9910000100000000025") {
		t.Fatal("two cards share a purse key")
	}
	if a == PurseKey([]byte("another master"), "9910000100000000017") {
		t.Fatal("two masters give one purse key")
	}
	if a != PurseKey(testMaster, "9910000100000000017") {
		t.Fatal("derivation is not deterministic")
	}
}

func TestDebit(t *testing.T) {
	cases := []struct {
		name    string
		purse   Purse
		amount  int64
		gate    string
		wantErr error
		wantBal int64
		wantCtr uint16
	}{
		{"plain", testPurse(1000, 0), 300, "001000000007", nil, 700, 1},
		{"exact balance", testPurse(300, 41), 300, "001000000007", nil, 0, 42},
		{"short", testPurse(299, 5), 300, "001000000007", ErrShort, 299, 5},
		{"zero amount", testPurse(1000, 0), 0, "001000000007", ErrBadAmount, 1000, 0},
		{"negative amount", testPurse(1000, 0), -1, "001000000007", ErrBadAmount, 1000, 0},
		{"counter exhausted", testPurse(1000, CounterMax), 1, "001000000007", ErrCounterSpent, 1000, CounterMax},
		{"last counter", testPurse(1000, CounterMax-1), 1, "001000000007", nil, 999, CounterMax},
		{"bad gate", testPurse(1000, 0), 1, "00100000007", ErrBadGate, 1000, 0},
		{"gate not digits", testPurse(1000, 0), 1, "00100000000x", ErrBadGate, 1000, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			after, tap, err := c.purse.Debit(c.amount, c.gate, t0)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
			if after.Balance != c.wantBal || after.Counter != c.wantCtr {
				t.Fatalf("purse after: balance %d counter %d, want %d %d", after.Balance, after.Counter, c.wantBal, c.wantCtr)
			}
			if err != nil {
				return
			}
			if tap.BalanceAfter != c.wantBal || tap.Counter != c.wantCtr || tap.Amount != c.amount {
				t.Fatalf("tap %+v", tap)
			}
			if !VerifyTAC(c.purse.Key, &tap) {
				t.Fatal("TAC does not verify under the purse key")
			}
		})
	}
}

func TestTACCoversEveryField(t *testing.T) {
	_, tap, err := testPurse(1000, 0).Debit(300, "001000000007", t0)
	if err != nil {
		t.Fatal(err)
	}
	key := testPurse(0, 0).Key
	changes := map[string]func(*Tap){
		"card":    func(x *Tap) { x.Card = "9910000100000000025" },
		"amount":  func(x *Tap) { x.Amount++ },
		"counter": func(x *Tap) { x.Counter++ },
		"balance": func(x *Tap) { x.BalanceAfter++ },
		"gate":    func(x *Tap) { x.Gate = "001000000008" },
		"time":    func(x *Tap) { x.Time = x.Time.Add(time.Second) },
		"tac":     func(x *Tap) { x.TAC[7] ^= 1 },
	}
	for name, change := range changes {
		x := tap
		change(&x)
		if VerifyTAC(key, &x) {
			t.Errorf("a changed %s still verifies", name)
		}
	}
	if VerifyTAC(PurseKey(testMaster, "9910000100000000025"), &tap) {
		t.Error("another card's key verifies the tap")
	}
}

func TestDebitTruncatesTimeToUTCSeconds(t *testing.T) {
	at := time.Date(2026, 12, 4, 16, 30, 15, 999, time.FixedZone("CST", 8*3600))
	_, tap, err := testPurse(1000, 0).Debit(1, "001000000007", at)
	if err != nil {
		t.Fatal(err)
	}
	if tap.Time.Location() != time.UTC || tap.Time.Nanosecond() != 0 || !tap.Time.Equal(t0) {
		t.Fatalf("time %v", tap.Time)
	}
}

// TestDocWorkedExample recomputes the worked example in docs/transit.md
// from the values written there.
func TestDocWorkedExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/transit.md")
	if err != nil {
		t.Fatal(err)
	}
	v := map[string]string{}
	for _, line := range strings.Split(string(doc), "\n") {
		name, val, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok {
			v[name] = strings.TrimSpace(val)
		}
	}
	num := func(name string) int64 {
		n, err := strconv.ParseInt(v[name], 10, 64)
		if err != nil {
			t.Fatalf("docs/transit.md %s: %v", name, err)
		}
		return n
	}
	master, err := hex.DecodeString(v["master key"])
	if err != nil || len(master) == 0 {
		t.Fatalf("docs/transit.md master key %q", v["master key"])
	}
	at, err := time.Parse(time.RFC3339, v["time"])
	if err != nil {
		t.Fatal(err)
	}
	key := PurseKey(master, v["card"])
	tap := Tap{Card: v["card"], Amount: num("amount"), Counter: uint16(num("counter")),
		BalanceAfter: num("balance after"), Gate: v["gate"], Time: at}
	if err := tap.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(key[:]); got != v["purse key"] {
		t.Errorf("purse key %s, docs/transit.md says %q", got, v["purse key"])
	}
	tac := ComputeTAC(key, &tap)
	if got := hex.EncodeToString(tac[:]); got != v["TAC"] {
		t.Errorf("TAC %s, docs/transit.md says %q", got, v["TAC"])
	}
}

func TestComputeTACAllocatesNothing(t *testing.T) {
	_, tap, _ := testPurse(1000, 0).Debit(300, "001000000007", t0)
	key := testPurse(0, 0).Key
	if n := testing.AllocsPerRun(100, func() { ComputeTAC(key, &tap) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// TestEnterAndExit: a tap-in records the entry without moving money or the
// counter; the exit debits and clears it; a tap-in while in counts a missed
// exit, up to the bound; the entry is not in the TAC.
func TestEnterAndExit(t *testing.T) {
	p := testPurse(1000, 4)
	in, err := p.Enter("100000000001", t0.Add(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if !in.In() || in.EntryGate != "100000000001" || !in.EntryTime.Equal(t0) || in.Balance != 1000 || in.Counter != 4 || in.MissedExits != 0 {
		t.Fatalf("after tap-in: %+v", in)
	}
	out, tap, err := in.Exit(400, "100000000002", t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if out.In() || !out.EntryTime.IsZero() || out.Balance != 600 || out.Counter != 5 || tap.Counter != 5 {
		t.Fatalf("after tap-out: %+v, tap %+v", out, tap)
	}
	// The TAC is the one a plain debit of the same purse gives: the
	// entry is not signed.
	if _, plain, _ := p.Debit(400, "100000000002", t0.Add(time.Hour)); plain.TAC != tap.TAC || !VerifyTAC(p.Key, &tap) {
		t.Fatal("the entry changed the TAC")
	}
	// A short purse cannot exit, and keeps its entry.
	if still, _, err := in.Exit(1001, "100000000002", t0); !errors.Is(err, ErrShort) || still != in {
		t.Fatalf("short exit: %v, purse %+v", err, still)
	}
	// Missed tap-outs count, to the bound.
	m := in
	for i := 1; i <= MissedExitsMax; i++ {
		if m, err = m.Enter("100000000003", t0.Add(time.Duration(i)*time.Hour)); err != nil || m.MissedExits != uint8(i) {
			t.Fatalf("re-entry %d: %v, missed %d", i, err, m.MissedExits)
		}
	}
	if again, err := m.Enter("100000000003", t0.Add(9*time.Hour)); !errors.Is(err, ErrMissedExits) || again != m {
		t.Fatalf("entry past the bound: %v", err)
	}
	if m, _, err = m.Exit(300, "100000000003", t0.Add(10*time.Hour)); err != nil || m.MissedExits != 0 || m.In() {
		t.Fatalf("exit after missed ones: %v %+v", err, m)
	}
	for _, bad := range []string{"", "1000", "10000000000x"} {
		if _, err := p.Enter(bad, t0); !errors.Is(err, ErrBadGate) {
			t.Errorf("entry at gate %q: %v", bad, err)
		}
	}
}
