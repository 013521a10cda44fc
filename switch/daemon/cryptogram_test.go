package daemon

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/termsim"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/cryptogram"
	"github.com/tapswitch/tapswitch/switch/node"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// send sends msg and returns DE39.
func send(t *testing.T, c *pos.Client, msg *moov.Message) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Do(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}
	return iso8583.FieldValue(resp, iso8583.FieldResponseCode)
}

// purchase is a tap of card for amount with a fresh STAN, signed by the
// card's phone unless changed afterwards.
func purchase(card wallet.Card, amount iso8583.Amount) pos.Tap {
	return pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcPurchase, Amount: amount,
		STAN: nextTestSTAN(), Time: time.Now()}.WithCard(card)
}

func icc(t *testing.T, msg *moov.Message) []byte {
	t.Helper()
	b, err := msg.GetBytes(iso8583.FieldICC)
	if err != nil || len(b) == 0 {
		t.Fatalf("tap without DE55: %v", err)
	}
	return b
}

// TestCryptogramChecksOverTCP: the cases against the dev switch.
func TestCryptogramChecksOverTCP(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	t.Run("a tampered cryptogram gets 59", func(t *testing.T) {
		msg := purchase(card, 100).Message()
		de55 := bytes.Clone(icc(t, msg))
		de55[3] ^= 0x01 // first ARQC byte
		msg.Field(iso8583.FieldICC, string(de55))
		if rc := send(t, c, msg); rc != iso8583.RCSuspectedFraud {
			t.Fatalf("rc %s, want 59", rc)
		}
	})
	t.Run("the same tap replayed with a new STAN gets 59", func(t *testing.T) {
		first := purchase(card, 100).Message()
		if rc := send(t, c, first); rc != iso8583.RCApproved {
			t.Fatalf("first tap rc %s", rc)
		}
		replay := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcPurchase, Token: card.Token,
			TokenExpiry: card.TokenExpiry, Amount: 100, STAN: nextTestSTAN(), Time: time.Now()}.Message()
		replay.Field(iso8583.FieldICC, string(icc(t, first)))
		if rc := send(t, c, replay); rc != iso8583.RCSuspectedFraud {
			t.Fatalf("replay rc %s, want 59", rc)
		}
	})
	t.Run("a contactless tap without DE55 gets 30", func(t *testing.T) {
		tap := purchase(card, 100)
		tap.Key = nil
		if rc := send(t, c, tap.Message()); rc != iso8583.RCFormatError {
			t.Fatalf("rc %s, want 30", rc)
		}
	})
	t.Run("above the CVM limit without fingerprint gets 05, with it 00", func(t *testing.T) {
		above := node.CVMLimitDefault + 1
		tap := purchase(card, above)
		tap.NoFingerprint = true
		if rc := send(t, c, tap.Message()); rc != "05" {
			t.Fatalf("without fingerprint rc %s, want 05", rc)
		}
		if rc := send(t, c, purchase(card, above).Message()); rc != iso8583.RCApproved {
			t.Fatalf("with fingerprint rc %s, want 00", rc)
		}
		small := purchase(card, node.CVMLimitDefault)
		small.NoFingerprint = true
		if rc := send(t, c, small.Message()); rc != iso8583.RCApproved {
			t.Fatalf("at the limit without fingerprint rc %s, want 00", rc)
		}
	})
	t.Run("out of order within the window once, older than it never", func(t *testing.T) {
		late := purchase(card, 100)           // counter n, held back
		ahead := purchase(card, 100)          // n+1 ...
		for range cryptogram.WindowSize - 2 { // ... n+2 .. n+WindowSize-1 never sent ...
			card.NextATC()
		}
		ahead.ATC = card.NextATC() // ... and this is n+WindowSize: late is WindowSize behind
		lateMsg := late.Message()
		if rc := send(t, c, ahead.Message()); rc != iso8583.RCApproved {
			t.Fatalf("tap ahead rc %s", rc)
		}
		if rc := send(t, c, lateMsg); rc != iso8583.RCApproved {
			t.Fatalf("late tap WindowSize behind rc %s, want 00", rc)
		}
		again := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcPurchase, Token: card.Token,
			TokenExpiry: card.TokenExpiry, Amount: 100, STAN: nextTestSTAN(), Time: time.Now()}.Message()
		again.Field(iso8583.FieldICC, string(icc(t, lateMsg)))
		if rc := send(t, c, again); rc != iso8583.RCSuspectedFraud {
			t.Fatalf("late tap again rc %s, want 59", rc)
		}
		tooOld := purchase(card, 100)
		tooOld.ATC = ahead.ATC - cryptogram.WindowSize - 1
		if rc := send(t, c, tooOld.Message()); rc != iso8583.RCSuspectedFraud {
			t.Fatalf("tap WindowSize+1 behind rc %s, want 59", rc)
		}
	})
	t.Run("a retransmission gets the first answer, not 59", func(t *testing.T) {
		msg := purchase(card, 100).Message()
		if rc := send(t, c, msg); rc != iso8583.RCApproved {
			t.Fatalf("rc %s", rc)
		}
		if rc := send(t, c, msg); rc != iso8583.RCApproved {
			t.Fatalf("retransmission rc %s, want the first answer 00", rc)
		}
	})
}

// TestCountersSurviveARestart: after a restart the switch still refuses a
// tap it accepted before, and the dev wallet it writes carries on above it.
func TestCountersSurviveARestart(t *testing.T) {
	cfg, err := node.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data = t.TempDir()
	cfg.Listen, cfg.Public, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	log := zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	start := func() (*DevWorld, wallet.Card, *pos.Client) {
		d, err := StartDev(cfg, 7, log)
		if err != nil {
			t.Fatal(err)
		}
		waitLinksUp(t, d)
		w, err := wallet.Load(d.WalletPath)
		if err != nil {
			t.Fatal(err)
		}
		card, _ := w.Card("approve")
		c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
		if err != nil {
			t.Fatal(err)
		}
		return d, card, c
	}
	d, card, c := start()
	var last *moov.Message
	for range 3 {
		last = purchase(card, 100).Message()
		if rc := send(t, c, last); rc != iso8583.RCApproved {
			t.Fatalf("rc %s", rc)
		}
	}
	c.Close()
	d.Close()

	d, card, c = start()
	defer d.Close()
	defer c.Close()
	if card.ATC != 3 {
		t.Fatalf("dev wallet written after the restart has ATC %d, want 3", card.ATC)
	}
	replay := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcPurchase, Token: card.Token,
		TokenExpiry: card.TokenExpiry, Amount: 100, STAN: nextTestSTAN(), Time: time.Now()}.Message()
	replay.Field(iso8583.FieldICC, string(icc(t, last)))
	if rc := send(t, c, replay); rc != iso8583.RCSuspectedFraud {
		t.Fatalf("replay after restart rc %s, want 59", rc)
	}
	if rc := send(t, c, purchase(card, 100).Message()); rc != iso8583.RCApproved {
		t.Fatalf("next tap after restart rc %s, want 00", rc)
	}
}

// TestTermsimAdvancesTheWalletATC: termsim signs with the wallet card, saves
// the advanced counter, and taps without the fingerprint on request.
func TestTermsimAdvancesTheWalletATC(t *testing.T) {
	d, _ := startWorld(t)
	run := func(args ...string) termsim.Answer {
		t.Helper()
		var out, errOut bytes.Buffer
		args = append(args, "-wallet", d.WalletPath, "-json")
		if code := termsim.Run(args, &out, &errOut); code != 0 {
			t.Fatalf("termsim %v: exit %d: %s", args, code, errOut.String())
		}
		var a termsim.Answer
		if err := json.Unmarshal(out.Bytes(), &a); err != nil {
			t.Fatalf("termsim printed %q: %v", out.String(), err)
		}
		return a
	}
	if a := run("pay", "-card", "approve", "-amount", "12.34"); a.RC != "00" || a.ATC != 1 {
		t.Fatalf("first tap %+v", a)
	}
	if a := run("pay", "-card", "approve", "-amount", "300.01", "-no-fingerprint"); a.RC != "05" || a.ATC != 2 {
		t.Fatalf("above the limit without fingerprint %+v", a)
	}
	if a := run("pay", "-card", "approve", "-amount", "300.01"); a.RC != "00" || a.ATC != 3 {
		t.Fatalf("above the limit with fingerprint %+v", a)
	}
	w, err := wallet.Load(d.WalletPath)
	if err != nil {
		t.Fatal(err)
	}
	if card, _ := w.Card("approve"); card.ATC != 3 {
		t.Fatalf("wallet ATC %d after three taps, want 3", card.ATC)
	}
	if other, _ := w.Card("transit"); other.ATC != 0 {
		t.Fatalf("another card's ATC moved to %d", other.ATC)
	}
}

// TestOneCryptogramSentAtOnceIsSpentOnce sends one tap's DE55 under 20
// STANs at the same moment: one approval, 19 replays.
func TestOneCryptogramSentAtOnceIsSpentOnce(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	de55 := icc(t, purchase(card, 100).Message())
	rcs := make(chan string, 20)
	var wg sync.WaitGroup
	for range 20 {
		msg := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcPurchase, Token: card.Token,
			TokenExpiry: card.TokenExpiry, Amount: 100, STAN: nextTestSTAN(), Time: time.Now()}.Message()
		msg.Field(iso8583.FieldICC, string(de55))
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := c.Do(ctx, msg)
			if err != nil {
				rcs <- err.Error()
				return
			}
			rcs <- iso8583.FieldValue(resp, iso8583.FieldResponseCode)
		})
	}
	wg.Wait()
	close(rcs)
	got := map[string]int{}
	for rc := range rcs {
		got[rc]++
	}
	if got["00"] != 1 || got["59"] != 19 {
		t.Fatalf("answers %v, want one 00 and nineteen 59", got)
	}
}

// networkDate is the switch's date (YYMMDD) days from today, in the
// network's time zone. Near midnight there it first waits for the day to
// turn, so that the switch and the test agree on which day is today.
func networkDate(t *testing.T, days int) string {
	t.Helper()
	zone, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().In(zone)
	if midnight := time.Date(now.Year(), now.Month(), now.Day()+1, 0, 0, 0, 0, zone); midnight.Sub(now) < 5*time.Second {
		time.Sleep(midnight.Sub(now) + 100*time.Millisecond)
		now = time.Now().In(zone)
	}
	return now.AddDate(0, 0, days).Format("060102")
}

// TestCryptogramBoundToDateAndTerminalOverTCP: a cryptogram made for a day
// months ahead (pre-play) is refused, and so is one made for another
// terminal; the taps of yesterday, today and tomorrow pass.
func TestCryptogramBoundToDateAndTerminalOverTCP(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dated := func(days int) *moov.Message {
		tap := purchase(card, 100)
		tap.Date = networkDate(t, days)
		return tap.Message()
	}
	t.Run("a cryptogram dated months ahead gets 59, and is spent", func(t *testing.T) {
		msg := dated(90)
		if rc := send(t, c, msg); rc != iso8583.RCSuspectedFraud {
			t.Fatalf("pre-played tap rc %s, want 59", rc)
		}
		again := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcPurchase, Token: card.Token,
			TokenExpiry: card.TokenExpiry, Amount: 100, STAN: nextTestSTAN(), Time: time.Now()}.Message()
		again.Field(iso8583.FieldICC, string(icc(t, msg)))
		if rc := send(t, c, again); rc != iso8583.RCSuspectedFraud {
			t.Fatalf("the same cryptogram again rc %s, want 59", rc)
		}
	})
	for _, days := range []int{-2, 2, -90} {
		if rc := send(t, c, dated(days)); rc != iso8583.RCSuspectedFraud {
			t.Errorf("a tap dated %d days from today rc %s, want 59", days, rc)
		}
	}
	for _, days := range []int{-1, 0, 1} {
		if rc := send(t, c, dated(days)); rc != iso8583.RCApproved {
			t.Errorf("a tap dated %d days from today rc %s, want 00", days, rc)
		}
	}
	t.Run("a cryptogram made for one terminal gets 59 at another", func(t *testing.T) {
		msg := purchase(card, 100).Message() // for pos.DemoTerminal, never sent there
		elsewhere := pos.DemoTerminal
		elsewhere.TerminalID = "TERM0777"
		stolen := pos.Tap{Terminal: elsewhere, ProcessingCode: iso8583.ProcPurchase, Token: card.Token,
			TokenExpiry: card.TokenExpiry, Amount: 100, STAN: nextTestSTAN(), Time: time.Now()}.Message()
		stolen.Field(iso8583.FieldICC, string(icc(t, msg)))
		if rc := send(t, c, stolen); rc != iso8583.RCSuspectedFraud {
			t.Fatalf("at another terminal rc %s, want 59", rc)
		}
		if rc := send(t, c, msg); rc != iso8583.RCApproved {
			t.Fatalf("at its own terminal afterwards rc %s, want 00 (not spent by the refusal)", rc)
		}
	})
}

// TestBalanceInquiryNeedsTheFingerprintOverTCP: a balance inquiry without
// the cardholder verified on the phone gets 05 whatever cvm_limit says;
// termsim's balance command verifies by default and gets the balance.
func TestBalanceInquiryNeedsTheFingerprintOverTCP(t *testing.T) {
	d, w := startWorldWith(t, func(c *node.Config) { c.CVMLimit = 1_000_000_00 })
	card, _ := w.Card("approve")
	c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	balance := func(fingerprint bool) (string, *moov.Message) {
		tap := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcBalanceInquiry,
			STAN: nextTestSTAN(), Time: time.Now(), NoFingerprint: !fingerprint}.WithCard(card)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := c.Do(ctx, tap.Message())
		if err != nil {
			t.Fatal(err)
		}
		return iso8583.FieldValue(resp, iso8583.FieldResponseCode), resp
	}
	rc, resp := balance(false)
	if rc != "05" {
		t.Fatalf("balance inquiry without fingerprint rc %s, want 05", rc)
	}
	if resp.GetField(iso8583.FieldAdditionalAmounts) != nil {
		t.Fatal("the refused balance inquiry carries DE54")
	}
	rc, resp = balance(true)
	if rc != iso8583.RCApproved || resp.GetField(iso8583.FieldAdditionalAmounts) == nil {
		t.Fatalf("balance inquiry with fingerprint rc %s, DE54 %v, want 00 with the balance", rc, resp.GetField(iso8583.FieldAdditionalAmounts) != nil)
	}

	run := func(args ...string) (termsim.Answer, int) {
		var out, errOut bytes.Buffer
		args = append(args, "-wallet", d.WalletPath, "-json")
		code := termsim.Run(args, &out, &errOut)
		var a termsim.Answer
		if err := json.Unmarshal(out.Bytes(), &a); err != nil {
			t.Fatalf("termsim %v printed %q (%s): %v", args, out.String(), errOut.String(), err)
		}
		return a, code
	}
	if a, code := run("balance", "-card", "transit"); code != 0 || a.RC != "00" {
		t.Fatalf("termsim balance: exit %d, %+v; want 00", code, a)
	}
	if a, _ := run("balance", "-card", "transit", "-no-fingerprint"); a.RC != "05" {
		t.Fatalf("termsim balance -no-fingerprint: %+v; want 05", a)
	}
}

// TestDevKeysBySwitchAndSettle: switchd -dev upgrades a key file written
// before the token master existed, gives settle a file of the data keys
// only, and the demo cards' keys derive from the token master: a tap with
// one is approved.
func TestDevKeysBySwitchAndSettle(t *testing.T) {
	data := t.TempDir()
	old := "index: " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 32)) + "\n" +
		"v1: " + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{2}, 32)) + "\n"
	if err := os.WriteFile(filepath.Join(data, devKeyFileName), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	d, w := startWorldWith(t, func(c *node.Config) { c.Data = data })
	text, _ := os.ReadFile(filepath.Join(data, devKeyFileName))
	if !strings.Contains(string(text), "\ntoken-master: ") {
		t.Fatalf("dev key file not given a token master:\n%d bytes", len(text))
	}
	if _, err := vault.LoadDataKeysFile(d.SettleKeyPath); err != nil {
		t.Fatalf("settle's dev key file: %v", err)
	}
	settleText, _ := os.ReadFile(d.SettleKeyPath)
	if strings.Contains(string(settleText), "index:") || strings.Contains(string(settleText), "token-master:") {
		t.Fatal("settle's dev key file holds a switch-only key")
	}
	card, _ := w.Card("approve")
	if card.Key != hex.EncodeToString(d.Node.Keys.TokenKey(card.Token)) {
		t.Fatal("the demo card's key is not its token key")
	}
	c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if rc := send(t, c, purchase(card, 100).Message()); rc != iso8583.RCApproved {
		t.Fatalf("tap with the demo card rc %s, want 00", rc)
	}
}
