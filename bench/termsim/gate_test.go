package termsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/settlement/transit"
)

var operatorMaster = []byte("operator 1001 master key, 32 b..")

// gateWallet writes a wallet holding one transit card with balance fen.
func gateWallet(t *testing.T, balance int64) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "wallet.json")
	card := "1001000000000017"
	p := transit.Purse{Operator: "1001", Card: card, Balance: balance, Key: transit.PurseKey(operatorMaster, card)}
	if err := wallet.Save(path, wallet.File{Transit: []wallet.TransitCard{wallet.TransitCardOf("metro", p)}}); err != nil {
		t.Fatal(err)
	}
	return path
}

func runTermsim(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestGateTwoTapsAndTheirFile: two taps through a gate from the command
// line debit the wallet's purse, and the gate's tap file clears both.
func TestGateTwoTapsAndTheirFile(t *testing.T) {
	w := gateWallet(t, 10_00)
	for i := 1; i <= 2; i++ {
		code, out, errOut := runTermsim("gate", "-wallet", w, "-card", "metro", "-gate", "100100000001", "-fare", "3.00", "-json")
		if code != 0 {
			t.Fatalf("tap %d: exit %d: %s", i, code, errOut)
		}
		var tap GateTap
		if err := json.Unmarshal([]byte(out), &tap); err != nil || tap.Counter != uint16(i) {
			t.Fatalf("tap %d: %q (%v)", i, out, err)
		}
	}
	f, err := wallet.Load(w)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := f.TransitCard("metro")
	if c.Balance != 4_00 || c.Counter != 2 {
		t.Fatalf("wallet purse after two taps: balance %d counter %d", c.Balance, c.Counter)
	}
	code, out, errOut := runTermsim("gate", "-wallet", w, "-gate", "100100000001", "-fare", "3.00", "-write-file", "20261204")
	if code != 0 {
		t.Fatalf("write-file: exit %d: %s", code, errOut)
	}
	data, err := os.ReadFile(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	r := transit.Ingest(map[string][]byte{"1001": operatorMaster}, []transit.InFile{{Name: "gate", Data: data}}, nil)
	if len(r.Cleared) != 2 || len(r.Rejections) != 0 {
		t.Fatalf("ingestion: %s", r.Report())
	}
}

// TestGateRefusesBlacklistedAndShort: a blacklisted card and a purse short
// of the fare exit 1 with the reason, and the purse is not debited.
func TestGateRefusesBlacklistedAndShort(t *testing.T) {
	w := gateWallet(t, 2_00)
	bl := writeBlacklist(t, 1, "1001000000000017")
	code, _, errOut := runTermsim("gate", "-wallet", w, "-card", "metro", "-gate", "100100000001", "-fare", "1.00", "-blacklist", bl)
	if code != 1 || !strings.Contains(errOut, "blacklist") {
		t.Fatalf("blacklisted: exit %d: %s", code, errOut)
	}
	// The gate keeps the list: refused again without -blacklist.
	code, _, errOut = runTermsim("gate", "-wallet", w, "-card", "metro", "-gate", "100100000001", "-fare", "1.00")
	if code != 1 || !strings.Contains(errOut, "blacklist") {
		t.Fatalf("blacklisted, list held: exit %d: %s", code, errOut)
	}
	code, _, errOut = runTermsim("gate", "-wallet", w, "-card", "metro", "-gate", "100100000002", "-fare", "3.00")
	if code != 1 || !strings.Contains(errOut, "short") {
		t.Fatalf("short: exit %d: %s", code, errOut)
	}
	f, _ := wallet.Load(w)
	if c, _ := f.TransitCard("metro"); c.Balance != 2_00 || c.Counter != 0 {
		t.Fatalf("refused taps debited the purse: %+v", c)
	}
	if code, _, errOut := runTermsim("gate", "-wallet", w, "-card", "metro", "-gate", "1001", "-fare", "1.00"); code != 2 {
		t.Fatalf("bad gate ID: exit %d: %s", code, errOut)
	}
	// A top-up paid but not applied: the purse takes no tap until it is.
	f.TopUps = append(f.TopUps, wallet.PendingTopUp{ID: "0123456789abcdef0123456789abcdef", Label: "metro", Card: "1001000000000017", Amount: 1_00})
	if err := wallet.Save(w, f); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runTermsim("gate", "-wallet", w, "-card", "metro", "-gate", "100100000002", "-fare", "1.00")
	if code != 1 || !strings.Contains(errOut, "wallet transit") {
		t.Fatalf("tap with a top-up pending: exit %d: %s", code, errOut)
	}
}

// TestGateBadInputLeavesNoGate: a tap from a wallet that does not exist,
// and a tap file asked for a malformed day, fail with their reason and
// create no gate directory.
func TestGateBadInputLeavesNoGate(t *testing.T) {
	dir := t.TempDir()
	w := filepath.Join(dir, "missing.json")
	if code, _, errOut := runTermsim("gate", "-wallet", w, "-card", "metro", "-gate", "100100000001"); code != 1 || !strings.Contains(errOut, "missing.json") {
		t.Fatalf("missing wallet: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runTermsim("gate", "-wallet", w, "-gate", "100100000001", "-write-file", "2026-12-04"); code != 2 || !strings.Contains(errOut, "YYYYMMDD") {
		t.Fatalf("bad day: exit %d: %s", code, errOut)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("bad input left %d entries behind, e.g. %s", len(entries), entries[0].Name())
	}
}

// TestGateBeijingInAndOut: at the world's Beijing stations the first tap
// is the tap-in (the wallet saves the entry, nothing is debited), the
// second the tap-out at the distance fare (Pingguoyuan to Gongzhufen,
// 10.5 km: 4 yuan), and the exit gate's tap file clears it.
func TestGateBeijingInAndOut(t *testing.T) {
	w := gateWallet(t, 10_00)
	tap := func(station string) GateTap {
		t.Helper()
		code, out, errOut := runTermsim("gate", "-wallet", w, "-card", "metro", "-station", station, "-json")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", station, code, errOut)
		}
		var g GateTap
		if err := json.Unmarshal([]byte(out), &g); err != nil {
			t.Fatalf("%s: %q (%v)", station, out, err)
		}
		return g
	}
	in := tap("Pingguoyuan")
	f, _ := wallet.Load(w)
	c, _ := f.TransitCard("metro")
	if in.Passage != PassageIn || in.Gate != "001001010001" || in.TAC != "" || c.EntryGate != in.Gate || c.Balance != 10_00 || c.Counter != 0 {
		t.Fatalf("tap-in: %+v, wallet %+v", in, c)
	}
	out := tap("gongzhufen")
	f, _ = wallet.Load(w)
	c, _ = f.TransitCard("metro")
	if out.Passage != PassageOut || out.Station != "Gongzhufen" || out.Fare != "4.00" || out.Counter != 1 || c.EntryGate != "" || c.Balance != 6_00 {
		t.Fatalf("tap-out: %+v, wallet %+v", out, c)
	}
	code, path, errOut := runTermsim("gate", "-wallet", w, "-station", "Gongzhufen", "-write-file", "20261204")
	if code != 0 {
		t.Fatalf("write-file: exit %d: %s", code, errOut)
	}
	data, err := os.ReadFile(strings.TrimSpace(path))
	if err != nil {
		t.Fatal(err)
	}
	r := transit.Ingest(map[string][]byte{"1001": operatorMaster}, []transit.InFile{{Name: "gate", Data: data}}, nil)
	if len(r.Cleared) != 1 || r.Cleared[0].Amount != 4_00 || len(r.Rejections) != 0 {
		t.Fatalf("ingestion: %s", r.Report())
	}
	// Shanghai's flat 3 yuan, at a gate named by its ID.
	code, text, errOut := runTermsim("gate", "-wallet", w, "-card", "metro", "-gate", "002101010001")
	if code != 0 || !strings.Contains(text, "(Xujiahui)") || !strings.Contains(text, "single  fare 3.00  balance 3.00") {
		t.Fatalf("Shanghai: exit %d: %s%s", code, text, errOut)
	}
}

// TestGateStationFlagsRefused: a world gate with its own -fare, a gate
// named twice, an unknown station and no gate at all are usage errors.
func TestGateStationFlagsRefused(t *testing.T) {
	w := gateWallet(t, 10_00)
	for _, args := range [][]string{
		{"-station", "Xidan", "-fare", "1.00"},
		{"-gate", "001001040001", "-fare", "1.00"},
		{"-station", "Xidan", "-gate", "001001040001"},
		{"-station", "Atlantis"},
		{},
	} {
		code, _, errOut := runTermsim(append([]string{"gate", "-wallet", w, "-card", "metro"}, args...)...)
		if code != 2 {
			t.Errorf("%v: exit %d: %s", args, code, errOut)
		}
	}
}

// writeBlacklist writes version v of a blacklist naming cards, as lost,
// and returns its path.
func writeBlacklist(t *testing.T, v uint32, cards ...string) string {
	t.Helper()
	var entries []transit.BlacklistEntry
	for _, c := range cards {
		entries = append(entries, transit.BlacklistEntry{Card: c, Reason: transit.ReasonLost})
	}
	data, err := transit.WriteBlacklist(transit.BlacklistHeader{Version: v, Issued: time.Date(2026, 12, 4, 2, 0, 0, 0, time.UTC), Day: "20261204"}, entries)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), fmt.Sprintf("v%d.blacklist", v))
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestGateBlacklistVersions: -blacklist alone loads a list into a
// Beijing gate; an older version and a tampered file exit 1 and the gate
// keeps its version; the listed card is refused at the tap-out.
func TestGateBlacklistVersions(t *testing.T) {
	w := gateWallet(t, 10_00)
	if code, _, errOut := runTermsim("gate", "-wallet", w, "-card", "metro", "-station", "Xidan"); code != 0 {
		t.Fatalf("tap-in: exit %d: %s", code, errOut)
	}
	load := func(path string) (int, string) {
		code, out, errOut := runTermsim("gate", "-wallet", w, "-station", "Guomao", "-blacklist", path)
		return code, out + errOut
	}
	if code, out := load(writeBlacklist(t, 5, "1001000000000017")); code != 0 || !strings.Contains(out, "holds blacklist version 5") {
		t.Fatalf("load v5: exit %d: %s", code, out)
	}
	if code, out := load(writeBlacklist(t, 4)); code != 1 || !strings.Contains(out, "not newer") || !strings.Contains(out, "keeps blacklist version 5") {
		t.Fatalf("older v4: exit %d: %s", code, out)
	}
	v6 := writeBlacklist(t, 6, "1001000000000025")
	data, _ := os.ReadFile(v6)
	if err := os.WriteFile(v6, bytes.Replace(data, []byte("1001000000000025"), []byte("1001000000000026"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := load(v6); code != 1 || !strings.Contains(out, "corrupt") {
		t.Fatalf("tampered v6: exit %d: %s", code, out)
	}
	code, _, errOut := runTermsim("gate", "-wallet", w, "-card", "metro", "-station", "Guomao")
	if code != 1 || !strings.Contains(errOut, "blacklist") {
		t.Fatalf("blacklisted tap-out: exit %d: %s", code, errOut)
	}
	f, _ := wallet.Load(w)
	if c, _ := f.TransitCard("metro"); c.EntryGate == "" || c.Balance != 10_00 {
		t.Fatalf("a refused tap-out changed the purse: %+v", c)
	}
}
