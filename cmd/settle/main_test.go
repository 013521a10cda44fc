package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement/clearing"
	"github.com/tapswitch/tapswitch/switch/daemon"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/node"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// TestSettleADayOfMixedTraffic drives purchases, refunds, transit top-ups,
// a reversal, an issuer time-out (reversed by advice) and stand-in
// approvals (posted by advice) through the switch over loopback TCP, seals
// the day, runs settle, and checks: every settling journal entry is in its
// issuer's and its acquirer's file exactly once, every file passes the
// reader's recomputed totals and digest, the net positions sum to zero, and
// a second run writes the same bytes.
func TestSettleADayOfMixedTraffic(t *testing.T) {
	d, w := startDay(t)
	drive(t, d, w)
	day := d.Node.Journal.BusinessDayOf(time.Now())
	keyFile, switchKeys := d.SettleKeyPath, filepath.Join(d.Data, "dev-vault.keys")
	d.Node.SealClosedDays(time.Now().Add(48 * time.Hour))
	settling := settlingEntries(t, d, day)
	ledgers := t.TempDir()
	if _, err := d.Fleet.WriteLedgers(ledgers); err != nil {
		t.Fatal(err)
	}
	d.Close()

	out := t.TempDir()
	args := []string{"-date", day[:4] + "-" + day[4:6] + "-" + day[6:], "-journals", d.Data, "-keys", keyFile, "-out", out, "-quiet"}
	var stdout, stderr bytes.Buffer
	withSwitchKeys := slices.Clone(args)
	withSwitchKeys[5] = switchKeys
	if code := run(withSwitchKeys, time.Now(), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "an index key; this key file is for data keys only") {
		t.Fatalf("settle with the switch's key file: exit %d, stderr %q; want 1, refused", code, stderr.String())
	}
	if names, _ := os.ReadDir(out); len(names) != 0 {
		t.Fatalf("the refused run wrote %d entries", len(names))
	}
	stderr.Reset()
	if code := run(args, time.Now(), &stdout, &stderr); code != 0 || stdout.Len() != 0 {
		t.Fatalf("settle exit %d, stdout %q, stderr %q", code, stdout.String(), stderr.String())
	}
	first := readDir(t, filepath.Join(out, day))
	seen := map[string]int{}
	for name, data := range first {
		if !strings.HasSuffix(name, ".clr") {
			continue
		}
		f, err := clearing.Read(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, det := range f.Details {
			seen[fmt.Sprintf("%s/%d/%c", det.NodeID, det.JournalSeq, f.Header.Role)]++
		}
	}
	for _, id := range settling {
		for _, role := range []string{"I", "A"} {
			if seen[id+"/"+role] != 1 {
				t.Errorf("entry %s is in %d %s files, want 1", id, seen[id+"/"+role], role)
			}
		}
	}
	if len(seen) != 2*len(settling) {
		t.Errorf("files hold %d records, the journal %d settling entries (x2)", len(seen), len(settling))
	}
	if _, ok := first["net-"+day+".txt"]; !ok {
		t.Fatal("no net report")
	}
	if code := run(args, time.Now(), &stdout, &stderr); code != 0 {
		t.Fatalf("second run: %s", stderr.String())
	}
	recArgs := []string{"reconcile", "-date", args[1], "-ledgers", ledgers, "-out", out}
	stdout.Reset()
	if code := run(recArgs, time.Now(), &stdout, &stderr); code != 0 {
		rep, _ := os.ReadFile(filepath.Join(out, day, "reconcile-ICBC.txt"))
		t.Fatalf("reconcile exit %d: %s\n%s", code, stderr.String(), rep)
	}
	if !strings.Contains(stdout.String(), "no breaks") {
		t.Fatalf("reconcile said %q", stdout.String())
	}
	second := readDir(t, filepath.Join(out, day))
	for name, data := range first {
		if strings.HasPrefix(name, "reconcile-") {
			continue
		}
		if !bytes.Equal(second[name], data) {
			t.Errorf("%s differs on the second run", name)
		}
	}
}

func startDay(t *testing.T) (*daemon.DevWorld, wallet.File) {
	cfg, err := node.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data = t.TempDir()
	cfg.Listen, cfg.Public, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.IssuerLinks.RequestTimeout = 300 * time.Millisecond
	cfg.Advices.RetryMin, cfg.Advices.RetryMax = 50*time.Millisecond, 200*time.Millisecond
	d, err := daemon.StartDev(cfg, 5, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	for deadline := time.Now().Add(10 * time.Second); d.Node.LinksUp() < len(d.Node.Issuers); {
		if time.Now().After(deadline) {
			t.Fatal("links not up")
		}
		time.Sleep(10 * time.Millisecond)
	}
	w, err := wallet.Load(d.WalletPath)
	if err != nil {
		t.Fatal(err)
	}
	return d, w
}

// drive sends the day's traffic from two terminals of two acquirers.
func drive(t *testing.T, d *daemon.DevWorld, w wallet.File) {
	approve, _ := w.Card("approve")
	transit, _ := w.Card("transit")
	icbc := dial(t, d, "SETL0001", "01020000", pos.DemoTerminal.MerchantID)
	cmb := dial(t, d, "CMBT0001", "03080000", "898110054110001") // configs/acquirers.yaml
	first := icbc.tap(approve, iso8583.ProcPurchase, 100_00)
	icbc.expect(t, first, "00")
	for i := range 5 {
		if i > 0 {
			icbc.must(t, approve, iso8583.ProcPurchase, iso8583.Amount(100_00+i), "00")
		}
		cmb.must(t, transit, iso8583.ProcPurchase, 2_00, "00")
	}
	bought := cmb.tap(approve, iso8583.ProcPurchase, 30_00)
	cmb.expect(t, bought, "00")
	cmb.expect(t, cmb.refundOf(approve, bought, 10_00), "00")
	icbc.must(t, approve, iso8583.ProcTransitTopUp, 50_00, "00")
	reversed := icbc.tap(approve, iso8583.ProcPurchase, 33_00)
	icbc.expect(t, reversed, "00")
	icbc.expect(t, icbc.reversalOf(reversed), "00")
	d.Fleet.SetFaults(approve.Issuer, issuersim.Faults{DropRate: 1}) // time-outs: stand-in approves
	icbc.must(t, approve, iso8583.ProcPurchase, 7_00, "00")
	icbc.expect(t, icbc.refundOf(approve, first, 1_00), "91") // never stood in for
	d.Fleet.SetFaults(approve.Issuer, issuersim.Faults{})
	waitDrained(t, d)
}

func waitDrained(t *testing.T, d *daemon.DevWorld) {
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, _ := d.Node.Journal.AdviceCounts()
		if c[journal.AdviceDue] == 0 && c[journal.AdviceArmed] == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("advices not drained: %v", c)
		}
	}
}

// settlingEntries lists node/seq of the day's entries that settle.
func settlingEntries(t *testing.T, d *daemon.DevWorld, day string) []string {
	var ids []string
	err := d.Node.Journal.ScanDay(day, func(e journal.Entry) error {
		if e.ResponseCode == "00" && e.IssuerID != "" && e.ProcessingCode != iso8583.ProcBalanceInquiry {
			ids = append(ids, fmt.Sprintf("%s/%d", e.NodeID, e.Seq))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func readDir(t *testing.T, dir string) map[string][]byte {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][]byte{} // nothing published
	}
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = data
	}
	return out
}

// terminal is a test terminal of one acquirer.
type terminal struct {
	c    *pos.Client
	term pos.Terminal
	stan int
}

func dial(t *testing.T, d *daemon.DevWorld, id, acquirer, merchant string) *terminal {
	c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	term := pos.DemoTerminal
	term.TerminalID, term.Acquirer, term.MerchantID = id, acquirer, merchant
	return &terminal{c: c, term: term}
}

func (tm *terminal) tap(card wallet.Card, pc string, amount iso8583.Amount) *moov.Message {
	tm.stan++
	return pos.Tap{Terminal: tm.term, ProcessingCode: pc, Token: card.Token, TokenExpiry: card.TokenExpiry,
		Amount: amount, STAN: fmt.Sprintf("%06d", tm.stan), Time: time.Now()}.WithCard(card).Message()
}

// refundOf is a refund of amount against orig, an approved purchase of
// this terminal, named in DE90.
func (tm *terminal) refundOf(card wallet.Card, orig *moov.Message, amount iso8583.Amount) *moov.Message {
	tm.stan++
	return pos.Tap{Terminal: tm.term, ProcessingCode: iso8583.ProcRefund, Token: card.Token, TokenExpiry: card.TokenExpiry,
		Amount: amount, STAN: fmt.Sprintf("%06d", tm.stan), Time: time.Now(), Original: pos.OriginalOf(orig)}.WithCard(card).Message()
}

func (tm *terminal) must(t *testing.T, card wallet.Card, pc string, amount iso8583.Amount, rc string) {
	t.Helper()
	tm.expect(t, tm.tap(card, pc, amount), rc)
}

func (tm *terminal) expect(t *testing.T, msg *moov.Message, rc string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := tm.c.Do(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	if got := iso8583.FieldValue(resp, iso8583.FieldResponseCode); got != rc {
		t.Fatalf("DE3 %s amount %s: rc %s, want %s", iso8583.FieldValue(msg, 3), iso8583.FieldValue(msg, 4), got, rc)
	}
}

func (tm *terminal) reversalOf(orig *moov.Message) *moov.Message {
	tm.stan++
	m := iso8583.NewMessage()
	m.MTI(iso8583.MTIReversalRequest)
	for _, id := range []int{2, 3, 4, 32, 37, 41, 42, 49} {
		m.Field(id, iso8583.FieldValue(orig, id))
	}
	m.Field(iso8583.FieldTransmissionTime, time.Now().UTC().Format("0102150405"))
	m.Field(iso8583.FieldSTAN, fmt.Sprintf("%06d", tm.stan))
	m.Field(iso8583.FieldOriginalData, pos.OriginalOf(orig).DE90(tm.term.Acquirer))
	return m
}

// TestSettleRefusesSwitchOnlyKeys: settle's key file holds data keys only;
// one that also holds the token master or the index key is refused, naming
// the line, whatever else is right with it.
func TestSettleRefusesSwitchOnlyKeys(t *testing.T) {
	dir := t.TempDir()
	switchKeys, settleKeys := filepath.Join(dir, "switch.keys"), filepath.Join(dir, "settle.keys")
	if err := vault.GenerateKeyringFile(switchKeys); err != nil {
		t.Fatal(err)
	}
	if err := vault.WriteDataKeysFile(switchKeys, settleKeys); err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(settleKeys)
	extra := map[string]string{}
	for line := range strings.Lines(mustRead(t, switchKeys)) {
		if label, _, ok := strings.Cut(line, ":"); ok && !strings.HasPrefix(label, "v") && !strings.HasPrefix(label, "#") {
			extra[label] = line
		}
	}
	for label, want := range map[string]string{"token-master": "a token master key", "index": "an index key"} {
		path := filepath.Join(dir, label+".keys")
		if err := os.WriteFile(path, append(bytes.Clone(text), extra[label]...), 0o600); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		args := []string{"-date", "2026-11-25", "-journals", t.TempDir(), "-keys", path, "-out", t.TempDir(), "-quiet"}
		if code := run(args, time.Now(), &bytes.Buffer{}, &stderr); code != 1 ||
			!strings.Contains(stderr.String(), want+"; this key file is for data keys only") {
			t.Errorf("settle with a %s line: exit %d, %q; want 1 naming it", label, code, stderr.String())
		}
		if strings.Contains(stderr.String(), strings.TrimSpace(strings.SplitN(extra[label], ":", 2)[1])[:12]) {
			t.Errorf("the refusal repeats the key: %q", stderr.String())
		}
	}
	t.Setenv("TAPSWITCH_TEST_SETTLE_KEYS", mustRead(t, switchKeys))
	var stderr bytes.Buffer
	args := []string{"-date", "2026-11-25", "-journals", t.TempDir(), "-key-env", "TAPSWITCH_TEST_SETTLE_KEYS", "-out", t.TempDir(), "-quiet"}
	if code := run(args, time.Now(), &bytes.Buffer{}, &stderr); code != 1 || !strings.Contains(stderr.String(), "an index key") {
		t.Errorf("settle -key-env with the switch's keys: exit %d, %q; want 1", code, stderr.String())
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSettleFailsWithOneLine: cron gets a non-zero exit and one line.
func TestSettleFailsWithOneLine(t *testing.T) {
	keys := filepath.Join(t.TempDir(), "keys")
	if code := run([]string{"-journals", t.TempDir(), "-keys", keys, "-out", t.TempDir()}, time.Now(), &bytes.Buffer{}, &bytes.Buffer{}); code != 1 {
		t.Fatalf("missing key file: exit %d, want 1", code)
	}
	var stderr bytes.Buffer
	os.WriteFile(keys, nil, 0o600)
	code := run([]string{"-date", "2026-11-25", "-journals", t.TempDir(), "-keys", keys, "-out", t.TempDir(), "-quiet"}, time.Now(), &bytes.Buffer{}, &stderr)
	if code != 1 || strings.Count(stderr.String(), "\n") != 1 {
		t.Fatalf("exit %d, stderr %q: want 1 and one line", code, stderr.String())
	}
	if code := run([]string{"-date", "25/11/2026"}, time.Now(), &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
		t.Fatalf("bad usage: exit %d, want 2", code)
	}
}
