package gate

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/world"
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
	g, err := Open(t.TempDir(), gateID, Flat(3_00))
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
	g, err := Open(t.TempDir(), gateID, Flat(3_00))
	if err != nil {
		t.Fatal(err)
	}
	var ph phone
	listed := newPurse("1001000000000025", 10_00)
	if err := g.LoadBlacklist(blacklistFile(t, 1, listed.Card)); err != nil {
		t.Fatal(err)
	}
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
	g, err := Open(dir, gateID, Flat(3_00))
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

	again, err := Open(dir, gateID, Flat(3_00))
	if err != nil {
		t.Fatal(err)
	}
	if again.Pending() != 1 {
		t.Fatalf("pending after reopen: %d, want 1", again.Pending())
	}
	if _, _, err := again.Tap(newPurse("1001000000000025", 10_00), ph.save, at.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if third, err := Open(dir, gateID, Flat(3_00)); err != nil || third.Pending() != 2 {
		t.Fatalf("a tap after the torn line: reopened with %v, err %v", third, err)
	}
	path, err := again.WriteTapFile("20261204")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, gateID+"-00000002.taps") {
		t.Fatalf("second file %s, want sequence 2", path)
	}
	if _, err := Open(dir, "100100000008", Flat(3_00)); err == nil {
		t.Fatal("a gate directory opened as another gate")
	}
}

// TestOpenRefusesBadGates: malformed IDs and fares are refused.
func TestOpenRefusesBadGates(t *testing.T) {
	for _, c := range []struct {
		id   string
		fare Fare
	}{{"1001", Flat(3_00)}, {"10010000000X", Flat(3_00)}, {gateID, Flat(0)}, {gateID, Flat(-1)}, {gateID, Flat(transit.AmountMax + 1)},
		{gateID, Fare{Flat: 3_00, Distance: testCity{}}}, {gateID, Fare{Distance: testCity{max: 0}}}} {
		if _, err := Open(t.TempDir(), c.id, c.fare); err == nil {
			t.Errorf("gate %q fare %+v opened", c.id, c.fare)
		}
	}
}

// testCity is a distance fare whose every journey costs max.
type testCity struct{ max int64 }

func (c testCity) Between(entry, exit string) (int64, bool) { return c.max, true }
func (c testCity) Max() int64                               { return c.max }

// beijing opens a gate at each named Beijing station of the world.
func beijing(t *testing.T, names ...string) map[string]*Gate {
	t.Helper()
	gates := map[string]*Gate{}
	for _, n := range names {
		c, s, err := world.StationNamed(n)
		if err != nil {
			t.Fatal(err)
		}
		if gates[n], err = Open(t.TempDir(), s.Gate, Fare{Distance: c}); err != nil {
			t.Fatal(err)
		}
	}
	return gates
}

// TestDistanceFareInAndOut: a tap-in at Pingguoyuan records the entry
// (saved by the phone, no debit, nothing pending); the tap-out at Xidan,
// 15.8 km on, debits 5 yuan and clears the entry; its tap file clears.
func TestDistanceFareInAndOut(t *testing.T) {
	g := beijing(t, "Pingguoyuan", "Xidan")
	var ph phone
	p := newPurse("1001000000000017", 20_00)
	in, tap, err := g["Pingguoyuan"].Tap(p, ph.save, at)
	if err != nil || tap.Counter != 0 || !in.In() || in.EntryGate != g["Pingguoyuan"].ID() || in.Balance != 20_00 {
		t.Fatalf("tap-in: %v, tap %+v, purse %+v", err, tap, in)
	}
	if len(ph.saved) != 1 || ph.saved[0] != in || g["Pingguoyuan"].Pending() != 0 {
		t.Fatalf("tap-in: phone saved %v, gate pending %d", ph.saved, g["Pingguoyuan"].Pending())
	}
	out, tap, err := g["Xidan"].Tap(in, ph.save, at.Add(30*time.Minute))
	if err != nil || tap.Amount != 5_00 || tap.Counter != 1 || out.In() || out.Balance != 15_00 || ph.saved[1] != out {
		t.Fatalf("tap-out: %v, tap %+v, purse %+v", err, tap, out)
	}
	path, err := g["Xidan"].WriteTapFile("20261204")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	r := transit.Ingest(map[string][]byte{"1001": master}, []transit.InFile{{Name: "xidan", Data: data}}, nil)
	if len(r.Cleared) != 1 || len(r.Rejections) != 0 || len(r.Gaps) != 0 {
		t.Fatalf("ingestion: %s", r.Report())
	}
}

// TestDistanceFareMissedTapOut: an entry older than JourneyTimeMax makes
// the next tap a tap-in again, and the exit after it pays its own fare and
// the city's maximum for the journey that never tapped out. An entry the
// city does not know pays the maximum.
func TestDistanceFareMissedTapOut(t *testing.T) {
	g := beijing(t, "Xidan", "Guomao", "Tuqiao")
	var ph phone
	p := newPurse("1001000000000017", 50_00)
	p, _, err := g["Xidan"].Tap(p, ph.save, at)
	if err != nil {
		t.Fatal(err)
	}
	// Within the journey time the next tap is the exit; past it, a tap-in.
	p, tap, err := g["Guomao"].Tap(p, ph.save, at.Add(JourneyTimeMax+time.Second))
	if err != nil || tap.Counter != 0 || p.MissedExits != 1 || p.EntryGate != g["Guomao"].ID() || p.Balance != 50_00 {
		t.Fatalf("tap after the journey time: %v, tap %+v, purse %+v", err, tap, p)
	}
	// Guomao to Tuqiao is 27.2 km: 6 yuan, and 7 for the missed tap-out.
	p, tap, err = g["Tuqiao"].Tap(p, ph.save, at.Add(JourneyTimeMax+time.Hour))
	if err != nil || tap.Amount != 13_00 || p.In() || p.MissedExits != 0 || p.Balance != 37_00 {
		t.Fatalf("exit after a missed tap-out: %v, tap %+v, purse %+v", err, tap, p)
	}
	// A purse short of fare and penalty cannot leave, and keeps its entry.
	short := newPurse("1001000000000025", 10_00)
	short.EntryGate, short.EntryTime, short.MissedExits = g["Guomao"].ID(), at, 1
	if got, _, err := g["Tuqiao"].Tap(short, ph.save, at.Add(time.Minute)); !errors.Is(err, transit.ErrShort) || got != short {
		t.Fatalf("short exit: %v, purse %+v", err, got)
	}
	// An entry at a Shanghai gate, tapped out in Beijing: the maximum.
	odd := newPurse("1001000000000033", 10_00)
	odd.EntryGate, odd.EntryTime = "002102010001", at
	if _, tap, err := g["Xidan"].Tap(odd, ph.save, at.Add(time.Minute)); err != nil || tap.Amount != 7_00 {
		t.Fatalf("unknown entry: %v, tap %+v", err, tap)
	}
}

// TestFlatGateIgnoresTheEntry: a flat-fare gate debits its fare whatever
// the purse's entry in another city, and leaves the entry alone.
func TestFlatGateIgnoresTheEntry(t *testing.T) {
	g, err := Open(t.TempDir(), "002102010001", Flat(3_00))
	if err != nil {
		t.Fatal(err)
	}
	var ph phone
	p := newPurse("1001000000000017", 10_00)
	p.EntryGate, p.EntryTime = "001001040001", at
	after, tap, err := g.Tap(p, ph.save, at.Add(time.Hour))
	if err != nil || tap.Amount != 3_00 || after.EntryGate != p.EntryGate || after.Balance != 7_00 {
		t.Fatalf("flat tap of a purse in Beijing: %v, tap %+v, purse %+v", err, tap, after)
	}
}

// TestBlacklistedAtTapOut: a card blacklisted while its passenger is
// inside is refused at the exit too.
func TestBlacklistedAtTapOut(t *testing.T) {
	g := beijing(t, "Xidan", "Guomao")
	var ph phone
	p, _, err := g["Xidan"].Tap(newPurse("1001000000000017", 10_00), ph.save, at)
	if err != nil {
		t.Fatal(err)
	}
	if err := g["Guomao"].LoadBlacklist(blacklistFile(t, 1, p.Card)); err != nil {
		t.Fatal(err)
	}
	if got, _, err := g["Guomao"].Tap(p, ph.save, at.Add(time.Minute)); !errors.Is(err, ErrBlacklisted) || got != p {
		t.Fatalf("blacklisted exit: %v", err)
	}
}

// blacklistFile writes version v of a blacklist naming cards, as lost.
func blacklistFile(t *testing.T, v uint32, cards ...string) []byte {
	t.Helper()
	var entries []transit.BlacklistEntry
	for _, c := range cards {
		entries = append(entries, transit.BlacklistEntry{Card: c, Reason: transit.ReasonLost})
	}
	data, err := transit.WriteBlacklist(transit.BlacklistHeader{Version: v, Issued: at, Day: "20261204"}, entries)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestBlacklistVersions: a blacklisted card is refused; an older version,
// another list under the version held, a tampered file and a file with a
// faulty line are refused and the gate keeps its list; the list and its
// version survive a reopen; a newer list without the card lets it through
// and the old list's file is gone.
func TestBlacklistVersions(t *testing.T) {
	dir := t.TempDir()
	g, err := Open(dir, gateID, Flat(3_00))
	if err != nil {
		t.Fatal(err)
	}
	var ph phone
	listed := newPurse("1001000000000025", 10_00)
	v2 := blacklistFile(t, 2, listed.Card, "1001000000000033")
	if err := g.LoadBlacklist(v2); err != nil || g.BlacklistVersion() != 2 {
		t.Fatalf("load v2: %v, version %d", err, g.BlacklistVersion())
	}
	refused := func(g *Gate, when string) {
		t.Helper()
		if _, _, err := g.Tap(listed, ph.save, at); !errors.Is(err, ErrBlacklisted) || !strings.Contains(err.Error(), "lost") {
			t.Fatalf("%s: blacklisted card: %v", when, err)
		}
	}
	refused(g, "v2")
	tampered := bytes.Replace(v2, []byte(listed.Card), []byte("1001000000000026"), 1)
	faulty := []byte(strings.Replace(string(blacklistFile(t, 3, listed.Card)), "|lost\n", "|stolen\n", 1))
	faulty = append(faulty[:bytes.Index(faulty, []byte("Z|"))], trailerOf(faulty[:bytes.Index(faulty, []byte("Z|"))], 1)...)
	for _, c := range []struct {
		name string
		data []byte
		want error
	}{
		{"older", blacklistFile(t, 1), ErrBlacklistOlder},
		{"another list as v2", blacklistFile(t, 2), ErrBlacklistOlder},
		{"tampered", tampered, ErrBlacklistCorrupt},
		{"faulty line", faulty, ErrBlacklistCorrupt},
		{"cut", v2[:len(v2)-10], ErrBlacklistCorrupt},
	} {
		if err := g.LoadBlacklist(c.data); !errors.Is(err, c.want) || g.BlacklistVersion() != 2 {
			t.Errorf("%s: %v, version %d", c.name, err, g.BlacklistVersion())
		}
		refused(g, c.name)
	}
	if err := g.LoadBlacklist(v2); err != nil {
		t.Fatalf("the list held, again: %v", err)
	}
	again, err := Open(dir, gateID, Flat(3_00))
	if err != nil || again.BlacklistVersion() != 2 {
		t.Fatalf("reopened: %v, version %d", err, again.BlacklistVersion())
	}
	refused(again, "reopened")
	if err := again.LoadBlacklist(blacklistFile(t, 3, "1001000000000033")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := again.Tap(listed, ph.save, at); err != nil {
		t.Fatalf("a card off the list: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "blacklist-0000000002")); !os.IsNotExist(err) {
		t.Fatalf("the old list's file: %v", err)
	}
}

// TestOpenRefusesATamperedStoredBlacklist: a gate whose stored list no
// longer matches gate.json does not open without it.
func TestOpenRefusesATamperedStoredBlacklist(t *testing.T) {
	dir := t.TempDir()
	g, err := Open(dir, gateID, Flat(3_00))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.LoadBlacklist(blacklistFile(t, 4, "1001000000000025")); err != nil {
		t.Fatal(err)
	}
	stored := filepath.Join(dir, "blacklist-0000000004")
	// Another well-formed list put in its place is refused too.
	if err := os.WriteFile(stored, blacklistFile(t, 4), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, gateID, Flat(3_00)); err == nil || !strings.Contains(err.Error(), "blacklist-0000000004") {
		t.Fatalf("opened with another list: %v", err)
	}
	if err := os.Remove(stored); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, gateID, Flat(3_00)); err == nil {
		t.Fatal("opened without the list it holds")
	}
}

func trailerOf(body []byte, count int) []byte {
	sum := sha256.Sum256(body)
	return []byte(fmt.Sprintf("Z|%d|%x\n", count, sum))
}
