package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/termsim"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/internal/syncbuf"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/node"
)

// startWorld starts the dev world on free loopback ports in a temporary
// data directory.
func startWorld(t *testing.T) (*DevWorld, wallet.File) {
	return startWorldWith(t, nil)
}

// startWorldWith starts the dev world with its configuration changed by
// mutate first.
func startWorldWith(t *testing.T, mutate func(*node.Config)) (*DevWorld, wallet.File) {
	t.Helper()
	cfg, err := node.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data = t.TempDir()
	cfg.Listen, cfg.Public, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	if mutate != nil {
		mutate(&cfg)
	}
	d, err := StartDev(cfg, 7, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	w, err := wallet.Load(d.WalletPath)
	if err != nil {
		t.Fatal(err)
	}
	waitLinksUp(t, d)
	return d, w
}

func waitLinksUp(t *testing.T, d *DevWorld) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if d.Node.LinksUp() == len(d.Node.Issuers) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("issuer links not up: %d of %d", d.Node.LinksUp(), len(d.Node.Issuers))
}

var stanCounter struct {
	sync.Mutex
	n int
}

func nextTestSTAN() string {
	stanCounter.Lock()
	defer stanCounter.Unlock()
	stanCounter.n++
	return fmt.Sprintf("%06d", stanCounter.n)
}

func tap(t *testing.T, c *pos.Client, card wallet.Card, terminalID string, amount iso8583.Amount) (rc, token, auth string) {
	t.Helper()
	term := pos.DemoTerminal
	term.TerminalID = terminalID
	req := pos.Tap{Terminal: term, ProcessingCode: iso8583.ProcPurchase, Token: card.Token,
		TokenExpiry: card.TokenExpiry, Amount: amount, STAN: nextTestSTAN(), Time: time.Now()}.WithCard(card).Message()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Do(ctx, req)
	if err != nil {
		t.Fatalf("tap %s: %v", card.Label, err)
	}
	return iso8583.FieldValue(resp, iso8583.FieldResponseCode), iso8583.FieldValue(resp, iso8583.FieldPAN),
		iso8583.FieldValue(resp, iso8583.FieldAuthCode)
}

func TestDemoCardsOverTCP(t *testing.T) {
	d, w := startWorld(t)
	c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, label := range []string{"approve", "insufficient", "expired", "suspended", "unknown", "transit"} {
		card, err := w.Card(label)
		if err != nil {
			t.Fatal(err)
		}
		rc, token, auth := tap(t, c, card, "TERM0001", 1234)
		t.Logf("%s %s %s", label, rc, auth)
		if rc != card.Outcome {
			t.Errorf("%s: rc %s, want %s", label, rc, card.Outcome)
		}
		if token != card.Token {
			t.Errorf("%s: answer carries DE2 %q, want the token %s", label, token, card.Token)
		}
		if (rc == iso8583.RCApproved) != (auth != "") {
			t.Errorf("%s: rc %s with auth code %q", label, rc, auth)
		}
	}
}

// TestIssuerSeesPANTerminalSeesToken reads both sides of one approval.
func TestIssuerSeesPANTerminalSeesToken(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc, token, _ := tap(t, c, card, "TERM0002", 500)
	if rc != "00" || token != card.Token {
		t.Fatalf("terminal got rc %s DE2 %s", rc, token)
	}
	tok, err := d.Node.Vault.Get(card.Token)
	if err != nil {
		t.Fatal(err)
	}
	if tok.PAN.Clear() == card.Token {
		t.Fatal("token equals PAN")
	}
	got := d.Fleet.Issuer(card.Issuer).Received()
	found := false
	for _, r := range got {
		if r.PAN.Clear() == tok.PAN.Clear() && r.TokenData.Token.Clear() == card.Token &&
			r.TokenData.DeviceID == card.DeviceID && r.Expiry == tok.CardExpiry {
			found = true
		}
		if r.PAN.Clear() == card.Token {
			t.Fatal("issuer received the token as PAN")
		}
	}
	if !found {
		t.Fatalf("issuer %s did not receive PAN %s with token data; got %d requests", card.Issuer, tok.PAN, len(got))
	}
}

func TestTransitRoutesToOperator(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("transit")
	c, _ := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	defer c.Close()
	if rc, _, _ := tap(t, c, card, "TERM0003", 200); rc != "00" {
		t.Fatalf("transit rc %s", rc)
	}
	balance := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcBalanceInquiry, Token: card.Token,
		TokenExpiry: card.TokenExpiry, STAN: nextTestSTAN(), Time: time.Now()}.WithCard(card).Message()
	resp, err := c.Do(context.Background(), balance)
	if err != nil {
		t.Fatal(err)
	}
	if rc, de54 := iso8583.FieldValue(resp, iso8583.FieldResponseCode), iso8583.FieldValue(resp, iso8583.FieldAdditionalAmounts); rc != "00" || de54 == "" {
		t.Fatalf("balance inquiry: rc %s DE54 %q", rc, de54)
	}
	tok, _ := d.Node.Vault.Get(card.Token)
	ledger := d.Fleet.Issuer(card.Issuer).Ledger()
	if len(ledger) != 1 || ledger[0].PAN.Clear() != tok.PAN.Clear() || ledger[0].Amount != 200 {
		t.Fatalf("transit operator %s ledger %+v", card.Issuer, ledger)
	}
}

// TestPipelinedOnOneConnection sends 200 requests without waiting and
// matches every answer by STAN.
func TestPipelinedOnOneConnection(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	c, _ := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan string, 200)
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if rc, _, _ := tap(t, c, card, "TERM0004", 100); rc != "00" {
				errs <- rc
			}
		}()
	}
	wg.Wait()
	close(errs)
	for rc := range errs {
		t.Errorf("pipelined request got %s", rc)
	}
}

// TestFiftyTerminals runs 50 terminals at once and checks the journal and
// the issuers' ledgers agree on every approval.
func TestFiftyTerminals(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	const terminals, taps = 50, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	approved := 0
	for i := range terminals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			for range taps {
				if rc, _, _ := tap(t, c, card, fmt.Sprintf("TERM%04d", 200+i), 100); rc == "00" {
					mu.Lock()
					approved++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if approved != terminals*taps {
		t.Fatalf("%d of %d approved", approved, terminals*taps)
	}
	ledger := d.Fleet.Issuer(card.Issuer).Ledger()
	if len(ledger) != approved {
		t.Fatalf("issuer ledger has %d entries, terminals saw %d approvals", len(ledger), approved)
	}
	journaled := 0
	days, _ := d.Node.Journal.Days()
	for _, day := range days {
		d.Node.Journal.ScanDay(day, func(e journal.Entry) error {
			if e.ResponseCode == "00" {
				journaled++
			}
			return nil
		})
	}
	if journaled != approved {
		t.Fatalf("journal holds %d approvals, terminals saw %d", journaled, approved)
	}
}

// TestBadInputKeepsOthersServed sends an oversize frame, garbage and a
// request missing mandatory fields, while a good terminal keeps tapping.
func TestBadInputKeepsOthersServed(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	good, _ := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	defer good.Close()

	oversize, _ := net.Dial("tcp", d.Node.TerminalAddr())
	oversize.Write([]byte{0xff, 0xff, 'x'})
	assertClosed(t, oversize)

	garbage, _ := net.Dial("tcp", d.Node.TerminalAddr())
	iso8583.WriteFrame(garbage, []byte("\x00\x01garbage that is no MTI"))
	assertClosed(t, garbage)

	bad, _ := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	defer bad.Close()
	req := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: "000000", Token: card.Token,
		TokenExpiry: card.TokenExpiry, Amount: 100, STAN: nextTestSTAN(), Time: time.Now()}.Message()
	req.UnsetField(iso8583.FieldMerchantID)
	resp, err := bad.Do(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if rc := iso8583.FieldValue(resp, iso8583.FieldResponseCode); rc != iso8583.RCFormatError {
		t.Fatalf("missing DE42 answered %s, want 30", rc)
	}
	if rc, _, _ := tap(t, good, card, "TERM0005", 100); rc != "00" {
		t.Fatalf("good terminal got %s after the bad ones", rc)
	}
}

func assertClosed(t *testing.T, c net.Conn) {
	t.Helper()
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("switch kept a connection open after a bad frame")
			}
			return
		}
	}
}

// TestTermsimAgainstDevSwitch runs the termsim command's code with -json.
func TestTermsimAgainstDevSwitch(t *testing.T) {
	d, _ := startWorld(t)
	var out, errOut bytes.Buffer
	code := termsim.Run([]string{"pay", "-wallet", d.WalletPath, "-card", "insufficient", "-amount", "12.34", "-json"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("termsim exit %d: %s", code, errOut.String())
	}
	var a termsim.Answer
	if err := json.Unmarshal(out.Bytes(), &a); err != nil {
		t.Fatalf("termsim -json printed %q: %v", out.String(), err)
	}
	if a.RC != "51" || a.MTI != "0210" || a.STAN == "" || a.RRN == "" || a.Token == "" {
		t.Fatalf("termsim answer %+v", a)
	}
	code = termsim.Run([]string{"pay", "-switch", "127.0.0.1:1", "-token", "6299900000000000", "-expiry", "3012"}, &out, &errOut)
	if code == 0 {
		t.Fatal("termsim exit 0 with no switch listening")
	}
}

// TestNoClearPANInLogs taps every demo card with debug logging on and
// searches the whole log for each card number in clear.
func TestNoClearPANInLogs(t *testing.T) {
	cfg, _ := node.LoadConfig("")
	cfg.Data = t.TempDir()
	cfg.Listen, cfg.Public, cfg.Admin = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	var logs syncbuf.Buffer
	d, err := StartDev(cfg, 3, zerolog.New(&logs).Level(zerolog.DebugLevel))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	waitLinksUp(t, d)
	w, _ := wallet.Load(d.WalletPath)
	c, _ := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	defer c.Close()
	var pans []string
	for _, card := range w.Cards {
		tap(t, c, card, "TERM0009", 100)
		if tok, err := d.Node.Vault.Get(card.Token); err == nil {
			pans = append(pans, tok.PAN.Clear())
		}
	}
	if len(pans) < 5 {
		t.Fatalf("only %d demo PANs found in the vault", len(pans))
	}
	out := logs.String()
	if !bytes.Contains([]byte(out), []byte(`"message":"authorization"`)) {
		t.Fatal("no per-transaction log line at debug level")
	}
	maskedSeen := 0
	for _, pan := range pans {
		if bytes.Contains([]byte(out), []byte(pan)) {
			t.Errorf("log holds PAN %s in clear", iso8583.MaskPAN(pan))
		}
		if bytes.Contains([]byte(out), []byte(iso8583.MaskPAN(pan))) {
			maskedSeen++
		}
	}
	// The issuers log the card numbers they receive, masked: proof the
	// search looks where PANs are logged.
	if maskedSeen == 0 {
		t.Error("no masked PAN in the log at all")
	}
}
