package main

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/bench/proctest"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/bench/walletcli"
	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/settlement/transit"
	"github.com/tapswitch/tapswitch/switch/daemon"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// TestSIGKILLDuringTopUps kills the real switchd with SIGKILL four times
// while a phone tops up its Beijing card again and again, with the bank
// and the operator in their own process (issuersim), so their books
// outlive the switch. After each kill the switch restarts on the same data
// and the phone asks for the outcome of the top-up it was paying. At the
// end, with every advice delivered: the purse holds the opening plus
// exactly the loads the switch journaled approved; the operator's standing
// grants are those loads; the bank holds exactly those amounts for the
// card. Nothing lost, nothing doubled, to the fen.
func TestSIGKILLDuringTopUps(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills real processes")
	}
	dir := t.TempDir()
	switchd, issuersimBin, issuersFile, cfgFile := crashWorld(t, dir)
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	// The operators' keys, shared by the switch's data (where -dev reads
	// them) and the operators' process.
	operatorKeys := filepath.Join(data, daemon.DevOperatorKeysFileName)
	if err := transit.CreateMasterKeysFile(operatorKeys, []string{"0010", "0021", "0020", "0755", "0027", "0757"}); err != nil {
		t.Fatal(err)
	}
	issuerAdmin, _ := proctest.Issuersim(t, issuersimBin, "-issuers", issuersFile, "-cards", "200", "-operator-keys", operatorKeys)
	table, err := bintable.Parse(configs.Bins)
	if err != nil {
		t.Fatal(err)
	}
	card := daemon.DevBindableCard(table, 1, time.Now())

	phone := filepath.Join(dir, "phone.json")
	cli := func(args ...string) (int, string) {
		var out bytes.Buffer
		code := walletcli.Run(append(args[:1:1], append([]string{"-wallet", phone}, args[1:]...)...), &out, &out)
		return code, out.String()
	}
	must := func(args ...string) string {
		t.Helper()
		code, out := cli(args...)
		if code != 0 {
			t.Fatalf("wallet %v: exit %d: %s", args, code, out)
		}
		return out
	}
	// pointAt moves the phone to the restarted switch's API address.
	pointAt := func(dev wallet.File) {
		w, err := wallet.Load(phone)
		if err != nil {
			t.Fatal(err)
		}
		w.API = dev.API
		if err := wallet.Save(phone, w); err != nil {
			t.Fatal(err)
		}
	}

	proc, dev := proctest.Switchd(t, switchd, cfgFile, data, "127.0.0.1:0")
	must("login", "-api", dev.API, "-login", "kim", "-password", "correct horse", "-create")
	must("add-card", "-pan", card.PAN.Clear(), "-expiry", card.Expiry, "-cvn2", card.CVN2().Clear())
	must("confirm", "-code", strings.TrimSpace(must("dev-code", "-data", data)))
	bank := "card-" + card.PAN.Clear()[len(card.PAN.Clear())-4:]
	must("transit-open", "-operator", "BJT", "-card", bank, "-amount", "100.00")

	rng := rand.New(rand.NewPCG(3, 4))
	var attempts, failed atomic.Int64
	for round := range 4 {
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				attempts.Add(1)
				if code, _ := cli("transit-topup", "-transit", "BJT", "-card", bank, "-amount", "1.00"); code != 0 {
					failed.Add(1)
					return // the switch is gone
				}
			}
		}()
		time.Sleep(time.Duration(200+rng.IntN(500)) * time.Millisecond)
		proc.Process.Signal(syscall.SIGKILL)
		proc.Wait()
		<-done
		proc, dev = proctest.Switchd(t, switchd, cfgFile, data, "127.0.0.1:0")
		pointAt(dev)
		out := must("transit") // finishes the top-up the kill interrupted
		t.Logf("round %d: after the restart: %s", round, strings.TrimSpace(out))
	}
	proc.Process.Signal(syscall.SIGTERM)
	waitExit(t, proc)

	admin := proctest.FreeAddr(t)
	proc, dev = proctest.Switchd(t, switchd, cfgFile, data, admin)
	pointAt(dev)
	must("transit")
	waitAdvicesDrained(t, admin)
	proc.Process.Signal(syscall.SIGTERM)
	waitExit(t, proc)

	w, err := wallet.Load(phone)
	if err != nil {
		t.Fatal(err)
	}
	tc, err := w.TransitCard("BJT")
	if err != nil || len(w.TopUps) != 0 {
		t.Fatalf("purse %v, pending top-ups %v", err, w.TopUps)
	}
	j, err := journal.Open(filepath.Join(data, "journal"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	var journaled int64
	var loads int
	days, _ := j.Days()
	for _, day := range days {
		j.ScanDay(day, func(e journal.Entry) error {
			if e.PurseLoad != nil && e.ResponseCode == iso8583.RCApproved && e.Token == tc.Card {
				journaled += int64(e.Amount)
				loads++
			}
			return nil
		})
	}
	operator := ledger(t, issuerAdmin, "BJT")
	var granted int64
	for _, l := range operator.Loads {
		if !l.Voided {
			granted += int64(l.Amount)
		}
	}
	bankSnap := ledger(t, issuerAdmin, card.IssuerID)
	var held int64
	for _, l := range bankSnap.Ledger {
		if l.ProcessingCode == iso8583.ProcTransitTopUp && !l.Reversed {
			held += int64(l.Amount)
		}
	}
	// Request by request: every bank leg the journal approved and did not
	// reverse is one posting standing at the bank (an issuer that took a
	// new leg for a retry of an old one would hold one posting for two).
	var bankLegs, postings int
	for _, day := range days {
		j.ScanDay(day, func(e journal.Entry) error {
			if e.ProcessingCode == iso8583.ProcTransitTopUp && e.ResponseCode == iso8583.RCApproved {
				if e.OriginalSTAN != "" {
					bankLegs--
				} else {
					bankLegs++
				}
			}
			return nil
		})
	}
	for _, l := range bankSnap.Ledger {
		if l.ProcessingCode == iso8583.ProcTransitTopUp && !l.Reversed {
			postings++
		}
	}
	if bankLegs != postings {
		t.Errorf("the journal has %d bank legs standing, the bank %d postings", bankLegs, postings)
	}
	t.Logf("%d top-ups tried, %d cut by a kill; %d loads stand: purse %s, journal %s, operator %s, bank %s",
		attempts.Load(), failed.Load(), loads, iso8583.Amount(tc.Balance), iso8583.Amount(journaled),
		iso8583.Amount(granted), iso8583.Amount(held))
	if loads < 2 {
		t.Fatal("fewer than two loads stood: the test proves little")
	}
	if tc.Balance != journaled || granted != journaled || held != journaled || int(tc.LoadSequence) != loads {
		t.Fatalf("money differs: purse %d (sequence %d), journal %d in %d loads, operator %d, bank %d",
			tc.Balance, tc.LoadSequence, journaled, loads, granted, held)
	}
}

// ledger reads one issuer's book from issuersim's admin listener.
func ledger(t *testing.T, admin, issuerID string) issuersim.Snapshot {
	t.Helper()
	resp, err := http.Get("http://" + admin + "/ledger?issuer=" + issuerID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	snap, err := issuersim.ReadSnapshot(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}
