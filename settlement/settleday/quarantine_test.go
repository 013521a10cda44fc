package settleday

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement/clearing"
	"github.com/tapswitch/tapswitch/settlement/internal/testday"
	"github.com/tapswitch/tapswitch/settlement/netting"
	"github.com/tapswitch/tapswitch/settlement/quarantine"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// purchase is an approved purchase journaled as the switch journals one,
// modelled on the sample's first: terminal and STAN its own, sent at t.
func purchase(node, terminal, stan string, t time.Time) journal.Entry {
	e := testday.Entries()[0]
	e.NodeID, e.TerminalID, e.STAN, e.Time = node, terminal, stan, t
	e.TransmissionTime = t.Add(-3 * time.Second).Format("0102150405")
	e.RRN = "6073" + stan + "01"
	return e
}

// reversalOf is the reversal of o as switch/authorize decideReversal
// journals it: the terminal's own STAN and time, the original's parties and
// settlement fields copied.
func reversalOf(o journal.Entry, node, stan string, t time.Time) journal.Entry {
	r := o
	r.NodeID, r.MTI, r.STAN, r.Time = node, "0400", stan, t
	r.TransmissionTime = t.Add(-3 * time.Second).Format("0102150405")
	r.OriginalSTAN, r.OriginalTransmissionTime = o.STAN, o.TransmissionTime
	r.StandIn, r.AuthCode = false, ""
	return r
}

// badDay is the sample day with, among its good traffic, records the
// switch journaled before acquirers were checked at authorization, and
// returns them with the reason each must be quarantined for.
func badDay() ([]journal.Entry, map[string]quarantine.Reason) {
	at := testday.Entries()[0].Time // 09:15 Beijing time
	min := func(m int) time.Time { return at.Add(time.Duration(m) * time.Minute) }
	ownAcq := purchase("node-1", "T0000007", "000701", min(10))
	ownAcq.Acquirer = testday.Switch // DE32 = the network itself
	ownAcqRev := reversalOf(ownAcq, "node-1", "000702", min(11))
	noIssuer := purchase("node-2", "T0000008", "000801", min(20))
	noIssuer.IssuerID = "NOSUCH" // a member since removed from issuers.yaml
	// A reversal seen before its faulty original (node-1 sorts first):
	// fine alone, it must follow its original out.
	badOrig := purchase("node-2", "T0000009", "000901", min(30))
	badOrig.Currency = "840"
	laterRev := reversalOf(badOrig, "node-1", "000902", min(31))
	laterRev.Currency = iso8583.CurrencyCNY
	// An original written before its faulty reversal shows up.
	goodOrig := purchase("node-1", "T0000010", "001001", min(40))
	badRev := reversalOf(goodOrig, "node-2", "001002", min(41))
	badRev.Currency = "840"

	want := map[string]quarantine.Reason{
		"T0000007/000701": quarantine.AcquirerIsSwitch, "T0000007/000702": quarantine.AcquirerIsSwitch,
		"T0000008/000801": quarantine.IssuerNotMember,
		"T0000009/000901": quarantine.BadField, "T0000009/000902": quarantine.OriginalQuarantined,
		"T0000010/001001": quarantine.ReversalQuarantined, "T0000010/001002": quarantine.BadField,
	}
	entries := append(testday.Entries(), ownAcq, ownAcqRev, noIssuer, badOrig, laterRev, goodOrig, badRev)
	return entries, want
}

func runDay(t *testing.T, entries []journal.Entry) (testday.Sealed, Config) {
	t.Helper()
	dir := t.TempDir()
	s, err := testday.Seal(dir, entries)
	if err != nil {
		t.Fatal(err)
	}
	return s, Config{Day: s.Day, Nodes: nodesOf(s), Keys: &s.Keys.DataKeys, Issuers: testday.Members(),
		Fees: testday.Schedule(), SwitchInstitution: testday.Switch, Out: filepath.Join(dir, "out")}
}

// TestBadRecordsQuarantined: a day whose purchases include one with DE32 =
// the switch's own institution, its reversal, one of an issuer that is no
// member, and reversal pairs of which one half is faulty (each order of
// the two across nodes) settles everything else: every good record is in
// its issuer's and its acquirer's file once, the net report sums to zero
// over them, the exceptions report lists exactly the bad records with
// their reasons and no PAN, and a re-run writes the same bytes.
func TestBadRecordsQuarantined(t *testing.T) {
	entries, want := badDay()
	_, cfg := runDay(t, entries)
	res, err := Run(cfg)
	if err != nil {
		t.Fatalf("one bad record held back the day: %v", err)
	}
	var wantAmount iso8583.Amount
	good := map[string]bool{}
	for _, e := range entries {
		id := e.TerminalID + "/" + e.STAN
		if _, bad := want[id]; bad {
			wantAmount += e.Amount
		} else if e.ResponseCode == "00" && e.Amount > 0 {
			good[id] = true
		}
	}
	if res.Quarantined != len(want) || res.QuarantinedAmount != wantAmount || res.Transactions != len(good) {
		t.Fatalf("result %+v: want %d quarantined (%d fen), %d settled", res, len(want), int64(wantAmount), len(good))
	}
	first := readOut(t, res.Dir)
	checkClearing(t, first, good)
	checkNet(t, first["net-"+cfg.Day+".json"], len(good))
	checkExceptions(t, first, cfg.Day, want)

	again, err := Run(cfg)
	if err != nil || again.Quarantined != res.Quarantined {
		t.Fatalf("re-run: %v %+v", err, again)
	}
	second := readOut(t, res.Dir)
	if len(second) != len(first) {
		t.Fatalf("re-run wrote %d files, first run %d", len(second), len(first))
	}
	for name, data := range first {
		if !bytes.Equal(second[name], data) {
			t.Errorf("%s differs on the re-run", name)
		}
	}
}

// TestCleanDayHasEmptyExceptions: with no bad record nothing is
// quarantined, and the exceptions report still exists, saying so.
func TestCleanDayHasEmptyExceptions(t *testing.T) {
	_, cfg := runDay(t, testday.Entries())
	res, err := Run(cfg)
	if err != nil || res.Quarantined != 0 || res.Transactions != len(testday.Txns()) {
		t.Fatalf("%v %+v", err, res)
	}
	var r quarantine.Report
	if err := json.Unmarshal(readOut(t, res.Dir)["exceptions-"+cfg.Day+".json"], &r); err != nil || r.Count != 0 || len(r.Exceptions) != 0 {
		t.Fatalf("exceptions report of a clean day: %v %+v", err, r)
	}
}

func readOut(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]byte{} // nothing published
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			out[e.Name()] = data
		}
	}
	return out
}

// checkClearing reads every clearing file back and wants each good record
// once as issuer and once as acquirer, and nothing else.
func checkClearing(t *testing.T, files map[string][]byte, good map[string]bool) {
	t.Helper()
	seen := map[string]int{}
	for name, data := range files {
		if !strings.HasSuffix(name, ".clr") {
			continue
		}
		f, err := clearing.Read(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, d := range f.Details {
			seen[fmt.Sprintf("%s/%s/%c", d.TerminalID, d.STAN, f.Header.Role)]++
		}
	}
	for id := range good {
		if seen[id+"/I"] != 1 || seen[id+"/A"] != 1 {
			t.Errorf("%s is in %d issuer and %d acquirer files, want 1 and 1", id, seen[id+"/I"], seen[id+"/A"])
		}
	}
	if len(seen) != 2*len(good) {
		t.Errorf("the files hold %d records, want %d: %v", len(seen), 2*len(good), seen)
	}
}

func checkNet(t *testing.T, data []byte, txns int) {
	t.Helper()
	var r netting.Report
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	var sum iso8583.Amount
	for _, p := range r.Positions {
		sum += p.Net
		if p.Institution != testday.Switch && p.Member == "" {
			t.Errorf("position of %s, no member", p.Institution)
		}
	}
	if sum != 0 || r.Transactions != int64(txns) {
		t.Errorf("net positions sum to %d over %d transactions, want 0 over %d", int64(sum), r.Transactions, txns)
	}
}

func checkExceptions(t *testing.T, files map[string][]byte, day string, want map[string]quarantine.Reason) {
	t.Helper()
	var r quarantine.Report
	if err := json.Unmarshal(files["exceptions-"+day+".json"], &r); err != nil {
		t.Fatal(err)
	}
	got := map[string]quarantine.Reason{}
	for _, x := range r.Exceptions {
		got[x.TerminalID+"/"+x.STAN] = x.Reason
		if !strings.Contains(x.Token, "*") {
			t.Errorf("%s: token %s not masked", x.TerminalID, x.Token)
		}
	}
	if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(want)) || r.Count != len(want) {
		t.Errorf("exceptions %v (count %d), want %v", sorted(got), r.Count, sorted(want))
	}
	text := string(files["exceptions-"+day+".txt"])
	if n := strings.Count(text, "\n"); n != 6+len(want) {
		t.Errorf("text report has %d lines, want a header of 6 and one line per record:\n%s", n, text)
	}
	for id, reason := range want {
		term, stan, _ := strings.Cut(id, "/")
		if !strings.Contains(text, term) || !strings.Contains(text, stan) || !strings.Contains(text, string(reason)) {
			t.Errorf("text report does not name %s (%s):\n%s", id, reason, text)
		}
	}
	for _, e := range testday.Entries() {
		pan, _ := testday.PAN(e.Token)
		for name, data := range files {
			if strings.HasPrefix(name, "exceptions-") && (bytes.Contains(data, []byte(pan)) || bytes.Contains(data, []byte(e.Token))) {
				t.Errorf("%s holds a clear card number", name)
			}
		}
	}
}

func sorted(m map[string]quarantine.Reason) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+string(v))
	}
	sort.Strings(out)
	return out
}

// TestCorruptSealedFileFailsWhole: a sealed file with one byte changed
// (the digest no longer matches) is corruption, not a bad record: the run
// fails and writes nothing, not even an exceptions report.
func TestCorruptSealedFileFailsWhole(t *testing.T) {
	entries, _ := badDay()
	s, cfg := runDay(t, entries)
	paths, _ := filepath.Glob(filepath.Join(s.SealedDirs[1], "*.sealed"))
	data, err := os.ReadFile(paths[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	os.WriteFile(paths[0], data, 0o600)
	if _, err := Run(cfg); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("a corrupt sealed file: %v, want a digest error", err)
	}
	if out := readOut(t, filepath.Join(cfg.Out, cfg.Day)); len(out) != 0 {
		t.Fatalf("a failed run left %d files: %v", len(out), keys(out))
	}
}

// TestUnreadableKeysFailWhole: sealed PANs that the keys cannot open are
// not a bad record either: the run fails and writes nothing.
func TestUnreadableKeysFailWhole(t *testing.T) {
	entries, _ := badDay()
	_, cfg := runDay(t, entries)
	other := filepath.Join(t.TempDir(), "other.keys")
	if err := vault.GenerateKeyringFile(other); err != nil {
		t.Fatal(err)
	}
	wrong, err := vault.LoadKeyringFile(other)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Keys = &wrong.DataKeys
	if _, err := Run(cfg); err == nil || !strings.Contains(err.Error(), "open sealed PAN") {
		t.Fatalf("the wrong keys: %v, want an open sealed PAN error", err)
	}
	if out := readOut(t, filepath.Join(cfg.Out, cfg.Day)); len(out) != 0 {
		t.Fatalf("a failed run left %d files: %v", len(out), keys(out))
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
