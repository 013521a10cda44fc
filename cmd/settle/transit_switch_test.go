package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/bench/walletcli"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement/netting"
	"github.com/tapswitch/tapswitch/settlement/transit"
)

// TestSettleTransitAfterTopUpsThroughTheSwitch: a phone opens a Beijing
// card and tops it up through the running switch (the journal holds what
// the switch wrote for both legs), taps it on a Beijing gate between the
// opening and the top-up and on a Shanghai gate after; settle -taps clears
// both taps, the second only because the top-up's load, read from the
// sealed journal, lands between them; SPTC is owed the Shanghai fare and
// BJT the two bank legs it acquired, in one net report summing to zero.
func TestSettleTransitAfterTopUpsThroughTheSwitch(t *testing.T) {
	d, _ := startDay(t)
	file := filepath.Join(t.TempDir(), "phone.json")
	cli := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := walletcli.Run(append(args[:1:1], append([]string{"-wallet", file}, args[1:]...)...), &out, &errOut); code != 0 {
			t.Fatalf("wallet %v: exit %d: %s%s", args, code, out.String(), errOut.String())
		}
		return out.String()
	}
	card := d.Bindable
	cli("login", "-api", d.Node.PublicURL(), "-login", "tess", "-password", "correct horse", "-create")
	cli("add-card", "-pan", card.PAN.Clear(), "-expiry", card.Expiry, "-cvn2", card.CVN2().Clear())
	cli("confirm", "-code", strings.TrimSpace(cli("dev-code", "-data", d.Data)))
	bank := "card-" + card.PAN.Clear()[len(card.PAN.Clear())-4:]

	cli("transit-open", "-operator", "BJT", "-card", bank, "-amount", "50.00")
	tap := func(amount int64, gate string) transit.Tap {
		t.Helper()
		w, err := wallet.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		tc, err := w.TransitCard("BJT")
		if err != nil {
			t.Fatal(err)
		}
		p, err := tc.Purse()
		if err != nil {
			t.Fatal(err)
		}
		p, x, err := p.Debit(amount, gate, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := w.SetPurse("BJT", p); err != nil {
			t.Fatal(err)
		}
		if err := wallet.Save(file, w); err != nil {
			t.Fatal(err)
		}
		return x
	}
	home := tap(300, "001000000007") // counter 1, 47.00 left
	cli("transit-topup", "-transit", "BJT", "-card", bank, "-amount", "20.00")
	away := tap(400, "002100000001") // counter 2: 47.00 + 20.00 - 4.00

	day := d.Node.Journal.BusinessDayOf(time.Now())
	taps := filepath.Join(t.TempDir(), "taps")
	os.MkdirAll(filepath.Join(taps, day), 0o700)
	for _, x := range []transit.Tap{home, away} {
		data, err := transit.WriteTapFile(transit.Header{Operator: x.Gate[:4], Batch: x.Gate, Sequence: 1, Day: day}, []transit.Tap{x})
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(taps, day, x.Gate+"-00000001.taps"), data, 0o600)
	}
	d.Node.SealClosedDays(time.Now().Add(48 * time.Hour))
	keys, operatorKeys, data := d.SettleKeyPath, d.OperatorKeyPath, d.Data
	d.Close()

	out := t.TempDir()
	date := day[:4] + "-" + day[4:6] + "-" + day[6:]
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-date", date, "-journals", data, "-keys", keys, "-out", out, "-quiet",
		"-taps", taps, "-operator-keys", operatorKeys}, time.Now(), &stdout, &stderr); code != 0 {
		t.Fatalf("settle -taps: exit %d: %s", code, stderr.String())
	}
	m, files := published(t, out, day)
	if m.Transit == nil || m.Transit.Cleared != 2 || m.Transit.Rejected != 0 || m.Transit.Blacklisted != 0 {
		t.Fatalf("manifest transit %+v\n%s", m.Transit, files["transit-"+day+".txt"])
	}
	var rep netting.Report
	if err := json.Unmarshal(files["net-"+day+".json"], &rep); err != nil {
		t.Fatal(err)
	}
	var sum iso8583.Amount
	pos := map[string]netting.Position{}
	for _, p := range rep.Positions {
		sum += p.Net
		pos[p.Member] = p
	}
	if sum != 0 || pos["BJT"].TransitPaid != 400 || pos["SPTC"].TransitReceived != 400 || pos["BJT"].AcquirerDebits != 7_000 {
		t.Fatalf("sum %d, BJT %+v, SPTC %+v", sum, pos["BJT"], pos["SPTC"])
	}
}
