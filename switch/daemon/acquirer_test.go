package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/termsim"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/node"
)

// The terminals of configs/acquirers.yaml these tests speak as: the demo
// store's (acquired by ICBC) and a restaurant's (acquired by CCB).
func icbcTerminal(id string) pos.Terminal {
	t := pos.DemoTerminal
	t.TerminalID = id
	return t
}

func ccbTerminal(id string) pos.Terminal {
	return pos.Terminal{TerminalID: id, MerchantID: "105110058120001",
		MerchantName: "Lanzhou Noodles          Shanghai     CN", MCC: "5812", Acquirer: "01050000"}
}

// speaker taps as one terminal, with its own STANs and its own key (the
// one derived from its registered acquirer's key), whatever its messages
// claim.
type speaker struct {
	t    *testing.T
	c    *pos.Client
	term pos.Terminal
	key  []byte
	stan int
}

func newSpeaker(t *testing.T, d *DevWorld, term pos.Terminal) *speaker {
	c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	key, _ := d.AcquirerKeys.TerminalKey(term.Acquirer, term.TerminalID)
	return &speaker{t: t, c: c, term: term, key: key, stan: int(time.Now().UnixNano()/1000) % 900000}
}

func (s *speaker) tap(card wallet.Card, pc string, amount iso8583.Amount, orig *moov.Message) *moov.Message {
	s.stan++
	tap := pos.Tap{Terminal: s.term, ProcessingCode: pc, Token: card.Token, TokenExpiry: card.TokenExpiry,
		Amount: amount, STAN: fmt.Sprintf("%06d", s.stan), Time: time.Now()}.WithCard(card)
	if orig != nil {
		tap.Original = pos.OriginalOf(orig)
	}
	return tap.Message()
}

// reversalOf is this terminal's 0400 naming orig (a request of whichever
// terminal) in DE90.
func (s *speaker) reversalOf(orig *moov.Message) *moov.Message {
	s.stan++
	m := iso8583.NewMessage()
	m.MTI(iso8583.MTIReversalRequest)
	for _, id := range []int{iso8583.FieldPAN, iso8583.FieldProcessingCode, iso8583.FieldAmount,
		iso8583.FieldRRN, iso8583.FieldCurrency} {
		m.Field(id, iso8583.FieldValue(orig, id))
	}
	m.Field(iso8583.FieldAcquirer, s.term.Acquirer)
	m.Field(iso8583.FieldTerminalID, s.term.TerminalID)
	m.Field(iso8583.FieldMerchantID, s.term.MerchantID)
	m.Field(iso8583.FieldTransmissionTime, time.Now().UTC().Format("0102150405"))
	m.Field(iso8583.FieldSTAN, fmt.Sprintf("%06d", s.stan))
	m.Field(iso8583.FieldOriginalData, pos.OriginalOf(orig).DE90(s.term.Acquirer))
	return m
}

// send sends msg MACed with the speaker's own key and returns DE39. An
// approval comes back only with a MAC that verifies (pos.Client).
func (s *speaker) send(msg *moov.Message) string {
	s.t.Helper()
	return s.sendWithKey(msg, s.key)
}

func (s *speaker) sendWithKey(msg *moov.Message, key []byte) string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := s.c.DoWithKey(ctx, msg, key)
	if err != nil {
		s.t.Fatal(err)
	}
	return iso8583.FieldValue(resp, iso8583.FieldResponseCode)
}

// ledgerOf is every posting of terminal tid at every simulated issuer.
func ledgerOf(d *DevWorld, tid string) []issuersim.LedgerEntry {
	var out []issuersim.LedgerEntry
	for _, id := range d.Fleet.IDs() {
		for _, l := range d.Fleet.Issuer(id).Ledger() {
			if l.TerminalID == tid {
				out = append(out, l)
			}
		}
	}
	return out
}

func keyOf(msg *moov.Message) journal.Key {
	return journal.Key{TerminalID: iso8583.FieldValue(msg, iso8583.FieldTerminalID),
		STAN: iso8583.FieldValue(msg, iso8583.FieldSTAN), TransmissionTime: iso8583.FieldValue(msg, iso8583.FieldTransmissionTime)}
}

func randomKey() []byte {
	k := make([]byte, 32)
	rand.Read(k)
	return k
}

// TestRogueRefundRefused is issue 9's attack: a connection without any
// acquirer's key sends a 50,000.00 refund to a real token, claiming CCB as
// its acquirer, with a terminal and merchant it made up, then with a
// registered CCB terminal and a MAC it guessed. Nothing reaches an issuer
// and nothing is journaled.
func TestRogueRefundRefused(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	rogue, err := pos.Dial(d.Node.TerminalAddr(), time.Second, nil) // holds no key
	if err != nil {
		t.Fatal(err)
	}
	defer rogue.Close()
	madeUp := pos.Terminal{TerminalID: "ROGUE001", MerchantID: "999999999999999",
		MerchantName: "Nobody", MCC: "5411", Acquirer: "01050000"}
	for _, tc := range []struct {
		name string
		term pos.Terminal
		key  []byte
		want string
	}{
		{"no MAC, made-up terminal", madeUp, nil, iso8583.RCSecurityViolation},
		{"no MAC, registered terminal", ccbTerminal("CCBT0001"), nil, iso8583.RCSecurityViolation},
		{"guessed MAC, registered terminal", ccbTerminal("CCBT0001"), randomKey(), iso8583.RCSecurityViolation},
		{"guessed MAC, made-up terminal", madeUp, randomKey(), iso8583.RCTerminalNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := pos.Tap{Terminal: tc.term, ProcessingCode: iso8583.ProcRefund, Token: card.Token,
				TokenExpiry: card.TokenExpiry, Amount: 50_000_00, STAN: nextTestSTAN(), Time: time.Now()}.WithCard(card).Message()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := rogue.DoWithKey(ctx, msg, tc.key)
			if tc.key != nil && errors.Is(err, pos.ErrForged) {
				t.Fatalf("the switch MACed its answer to a rogue: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if rc := iso8583.FieldValue(resp, iso8583.FieldResponseCode); rc != tc.want {
				t.Fatalf("rc %s, want %s", rc, tc.want)
			}
			if _, found, err := d.Node.Journal.Lookup(keyOf(msg)); err != nil || found {
				t.Fatalf("the refused request was journaled (%v)", err)
			}
			if l := ledgerOf(d, tc.term.TerminalID); len(l) != 0 {
				t.Fatalf("the issuer posted %+v", l)
			}
		})
	}
}

// TestTerminalHeldToItsRegistration: a terminal with a valid MAC may only
// name its own merchant, that merchant's acquirer and MCCs.
func TestTerminalHeldToItsRegistration(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	ccb := newSpeaker(t, d, ccbTerminal("CCBT0001"))
	if rc := ccb.send(ccb.tap(card, iso8583.ProcPurchase, 1_00, nil)); rc != iso8583.RCApproved {
		t.Fatalf("the CCB terminal as registered: %s", rc)
	}
	claims := map[string]struct {
		change func(*pos.Terminal)
		want   string
	}{
		"acquirer B in DE32":               {func(p *pos.Terminal) { p.Acquirer = "01020000" }, iso8583.RCInvalidMerchant},
		"another merchant in DE42":         {func(p *pos.Terminal) { p.MerchantID = pos.DemoTerminal.MerchantID }, iso8583.RCInvalidMerchant},
		"an MCC not its merchant's":        {func(p *pos.Terminal) { p.MCC = "4111" }, iso8583.RCInvalidMerchant},
		"the switch's institution in DE32": {func(p *pos.Terminal) { p.Acquirer = "00010000" }, iso8583.RCInvalidMerchant},
	}
	for name, tc := range claims {
		t.Run(name, func(t *testing.T) {
			s := newSpeaker(t, d, ccbTerminal("CCBT0002"))
			tc.change(&s.term) // the key stays CCBT0002's own
			msg := s.tap(card, iso8583.ProcPurchase, 1_00, nil)
			if rc := s.send(msg); rc != tc.want {
				t.Fatalf("rc %s, want %s", rc, tc.want)
			}
			if _, found, _ := d.Node.Journal.Lookup(keyOf(msg)); found {
				t.Fatal("the refused request was journaled")
			}
		})
	}
	if l := ledgerOf(d, "CCBT0002"); len(l) != 0 {
		t.Fatalf("the issuer posted %d entries for the refused claims", len(l))
	}
	t.Run("MAC derived from the claimed acquirer's key", func(t *testing.T) {
		s := newSpeaker(t, d, ccbTerminal("CCBT0003"))
		s.term.Acquirer = "01020000"
		s.key, _ = d.AcquirerKeys.TerminalKey("01020000", "CCBT0003")
		if rc := s.send(s.tap(card, iso8583.ProcPurchase, 1_00, nil)); rc != iso8583.RCSecurityViolation {
			t.Fatalf("rc %s, want 63", rc)
		}
	})
	t.Run("unregistered DE41", func(t *testing.T) {
		s := newSpeaker(t, d, icbcTerminal("NOPE0001"))
		if s.key == nil {
			t.Fatal("no key derived")
		}
		if rc := s.send(s.tap(card, iso8583.ProcPurchase, 1_00, nil)); rc != iso8583.RCTerminalNotAllowed {
			t.Fatalf("rc %s, want 58", rc)
		}
	})
	t.Run("a byte changed after the MAC", func(t *testing.T) {
		s := newSpeaker(t, d, icbcTerminal("TERM0401"))
		msg := s.tap(card, iso8583.ProcPurchase, 1_00, nil)
		payload, err := iso8583.PackSigned(msg, s.key)
		if err != nil {
			t.Fatal(err)
		}
		amount := strings.Index(string(payload), "000000000100")
		payload[amount+9] = '9' // 1.00 becomes 9.00
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := s.c.Send(ctx, iso8583.FieldValue(msg, iso8583.FieldSTAN), payload, nil)
		if err != nil {
			t.Fatal(err)
		}
		if rc := iso8583.FieldValue(resp, iso8583.FieldResponseCode); rc != iso8583.RCSecurityViolation {
			t.Fatalf("rc %s, want 63", rc)
		}
		if l := ledgerOf(d, "TERM0401"); len(l) != 0 {
			t.Fatalf("the issuer posted %+v", l)
		}
	})
	t.Run("echo", func(t *testing.T) {
		s := newSpeaker(t, d, icbcTerminal("TERM0402"))
		s.stan++
		if rc := s.sendWithKey(pos.Echo(s.term, fmt.Sprintf("%06d", s.stan), time.Now()), nil); rc != iso8583.RCSecurityViolation {
			t.Fatalf("unsigned echo: %s, want 63", rc)
		}
		s.stan++
		if rc := s.send(pos.Echo(s.term, fmt.Sprintf("%06d", s.stan), time.Now())); rc != iso8583.RCApproved {
			t.Fatalf("signed echo: %s, want 00 with a MAC", rc)
		}
	})
}

// TestRegistryCheckedAtStart: an acquirer settlement could not pay is
// refused when the switch starts, not when its first purchase settles.
func TestRegistryCheckedAtStart(t *testing.T) {
	for name, acq := range map[string]string{"the switch itself": "00010000", "no member": "09990000"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "acquirers.yaml")
			doc := strings.Replace(string(configs.Acquirers), `{institution: "01050000",`, `{institution: "`+acq+`",`, 1)
			doc = strings.Replace(doc, `acquirer: "01050000"`, `acquirer: "`+acq+`"`, 1)
			os.WriteFile(path, []byte(doc), 0o600)
			cfg, _ := node.LoadConfig("")
			cfg.Data, cfg.Listen, cfg.Public, cfg.Admin, cfg.AcquirersFile = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0", path
			d, err := StartDev(cfg, 7, zerolog.Nop())
			if err == nil {
				d.Close()
				t.Fatalf("the switch started with acquirer %s", acq)
			}
			if !strings.Contains(err.Error(), acq) {
				t.Fatalf("error %q does not name %s", err, acq)
			}
		})
	}
}

// TestRefundsNameTheirOriginal: a refund gives back at most what its
// purchase at the same terminal has left, once.
func TestRefundsNameTheirOriginal(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	transit, _ := w.Card("transit")
	s := newSpeaker(t, d, icbcTerminal("TERM0411"))
	if rc := s.send(s.tap(card, iso8583.ProcRefund, 9_999_99, nil)); rc != iso8583.RCInvalidTransaction {
		t.Fatalf("refund without an original: %s, want 12", rc)
	}
	purchase := s.tap(card, iso8583.ProcPurchase, 12_34, nil)
	if rc := s.send(purchase); rc != iso8583.RCApproved {
		t.Fatalf("purchase: %s", rc)
	}
	steps := []struct {
		amount iso8583.Amount
		want   string
	}{
		{20_00, iso8583.RCInvalidAmount}, // more than the purchase
		{10_00, iso8583.RCApproved},
		{3_00, iso8583.RCInvalidAmount}, // 10.00 + 3.00 > 12.34
		{2_34, iso8583.RCApproved},      // the rest, to the fen
		{1, iso8583.RCInvalidAmount},    // nothing left
	}
	for _, st := range steps {
		if rc := s.send(s.tap(card, iso8583.ProcRefund, st.amount, purchase)); rc != st.want {
			t.Fatalf("refund of %s: %s, want %s", st.amount, rc, st.want)
		}
	}
	var credited iso8583.Amount
	for _, l := range ledgerOf(d, "TERM0411") {
		if l.ProcessingCode == iso8583.ProcRefund && l.ResponseCode == iso8583.RCApproved {
			credited += l.Amount
		}
	}
	if credited != 12_34 {
		t.Fatalf("the issuer credited %s, want 12.34", credited)
	}
	other := s.tap(transit, iso8583.ProcPurchase, 5_00, nil)
	if rc := s.send(other); rc != iso8583.RCApproved {
		t.Fatalf("transit purchase: %s", rc)
	}
	if rc := s.send(s.tap(card, iso8583.ProcRefund, 1_00, other)); rc != iso8583.RCOriginalNotFound {
		t.Fatalf("refund of another token's purchase: %s, want 25", rc)
	}
	elsewhere := newSpeaker(t, d, icbcTerminal("TERM0412"))
	bought := elsewhere.tap(card, iso8583.ProcPurchase, 5_00, nil)
	if rc := elsewhere.send(bought); rc != iso8583.RCApproved {
		t.Fatalf("purchase at TERM0412: %s", rc)
	}
	if rc := s.send(s.tap(card, iso8583.ProcRefund, 1_00, bought)); rc != iso8583.RCOriginalNotFound {
		t.Fatalf("refund of another terminal's purchase: %s, want 25", rc)
	}
	reversed := s.tap(card, iso8583.ProcPurchase, 7_00, nil)
	if rc := s.send(reversed); rc != iso8583.RCApproved {
		t.Fatalf("purchase: %s", rc)
	}
	if rc := s.send(s.reversalOf(reversed)); rc != iso8583.RCApproved {
		t.Fatalf("reversal: %s", rc)
	}
	if rc := s.send(s.tap(card, iso8583.ProcRefund, 1_00, reversed)); rc != iso8583.RCOriginalNotFound {
		t.Fatalf("refund of a reversed purchase: %s, want 25", rc)
	}
	if rc := s.send(s.reversalOf(purchase)); rc != iso8583.RCInvalidTransaction {
		t.Fatalf("reversal of a refunded purchase: %s, want 12", rc)
	}
	assertMoneyAgrees(t, d, card.Issuer)
}

// TestConcurrentRefundsTakeTheRemainderOnce: two refunds of one purchase
// at once, together more than it: one is approved, the other 13.
func TestConcurrentRefundsTakeTheRemainderOnce(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	s := newSpeaker(t, d, icbcTerminal("TERM0421"))
	purchase := s.tap(card, iso8583.ProcPurchase, 10_00, nil)
	if rc := s.send(purchase); rc != iso8583.RCApproved {
		t.Fatalf("purchase: %s", rc)
	}
	for round := range 5 {
		a, b := s.tap(card, iso8583.ProcRefund, 6_00, purchase), s.tap(card, iso8583.ProcRefund, 6_00, purchase)
		var wg sync.WaitGroup
		rcs := make([]string, 2)
		for i, msg := range []*moov.Message{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rcs[i] = s.send(msg)
			}()
		}
		wg.Wait()
		approved := 0
		for _, rc := range rcs {
			if rc == iso8583.RCApproved {
				approved++
			}
		}
		want := 0
		if round == 0 {
			want = 1
		}
		if approved != want {
			t.Fatalf("round %d: answers %v, want %d approved", round, rcs, want)
		}
	}
}

// TestRefundRuleOfTheMerchant: a merchant whose rule allows refunds
// without an original gets them up to its cap.
func TestRefundRuleOfTheMerchant(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acquirers.yaml")
	doc := strings.Replace(string(configs.Acquirers), "refunds_without_original: {enabled: false, amount_max: 0}",
		"refunds_without_original: {enabled: true, amount_max: 5000}", 1)
	os.WriteFile(path, []byte(doc), 0o600)
	d, w := startWorldWith(t, func(c *node.Config) { c.AcquirersFile = path })
	card, _ := w.Card("approve")
	s := newSpeaker(t, d, icbcTerminal("TERM0431"))
	if rc := s.send(s.tap(card, iso8583.ProcRefund, 50_00, nil)); rc != iso8583.RCApproved {
		t.Fatalf("refund at the cap: %s, want 00", rc)
	}
	if rc := s.send(s.tap(card, iso8583.ProcRefund, 50_01, nil)); rc != iso8583.RCInvalidAmount {
		t.Fatalf("refund above the cap: %s, want 13", rc)
	}
}

// TestReversalOnlyFromTheOriginalsTerminal: another terminal, merchant or
// acquirer naming a purchase's STAN and time releases nothing; its own
// terminal still can.
func TestReversalOnlyFromTheOriginalsTerminal(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	owner := newSpeaker(t, d, icbcTerminal("TERM0441"))
	purchase := owner.tap(card, iso8583.ProcPurchase, 42_00, nil)
	if rc := owner.send(purchase); rc != iso8583.RCApproved {
		t.Fatalf("purchase: %s", rc)
	}
	sameMerchant := newSpeaker(t, d, icbcTerminal("TERM0442"))
	if rc := sameMerchant.send(sameMerchant.reversalOf(purchase)); rc != iso8583.RCOriginalNotFound {
		t.Fatalf("another terminal of the merchant: %s, want 25", rc)
	}
	ccb := newSpeaker(t, d, ccbTerminal("CCBT0011"))
	if rc := ccb.send(ccb.reversalOf(purchase)); rc != iso8583.RCOriginalNotFound {
		t.Fatalf("another merchant and acquirer: %s, want 25", rc)
	}
	// The same, claiming the owner's DE41, DE42 and DE32 under its own key.
	impostor := newSpeaker(t, d, icbcTerminal("TERM0441"))
	impostor.key, _ = d.AcquirerKeys.TerminalKey("01050000", "CCBT0011")
	if rc := impostor.send(impostor.reversalOf(purchase)); rc != iso8583.RCSecurityViolation {
		t.Fatalf("impostor of the owner's terminal: %s, want 63", rc)
	}
	assertMoneyAgrees(t, d, card.Issuer)
	if held := heldFor(d, card.Issuer, "TERM0441"); held != 42_00 {
		t.Fatalf("the issuer holds %s for the purchase, want 42.00", held)
	}
	if rc := owner.send(owner.reversalOf(purchase)); rc != iso8583.RCApproved {
		t.Fatalf("the owner's reversal: %s", rc)
	}
	assertMoneyAgrees(t, d, card.Issuer)
	if held := heldFor(d, card.Issuer, "TERM0441"); held != 0 {
		t.Fatalf("the issuer still holds %s after the owner's reversal", held)
	}
}

// heldFor is what issuer id holds, unreversed, for terminal tid.
func heldFor(d *DevWorld, id, tid string) iso8583.Amount {
	var held iso8583.Amount
	for _, l := range d.Fleet.Issuer(id).Ledger() {
		if l.TerminalID == tid && !l.Reversed && l.ResponseCode == iso8583.RCApproved && l.ProcessingCode == iso8583.ProcPurchase {
			held += l.Amount
		}
	}
	return held
}

// TestReversalAgeLimit: an original older than reversal_age_max is not
// reversed, its hold stays.
func TestReversalAgeLimit(t *testing.T) {
	d, w := startWorldWith(t, func(c *node.Config) { c.ReversalAgeMax = time.Second })
	card, _ := w.Card("approve")
	s := newSpeaker(t, d, icbcTerminal("TERM0451"))
	old := s.tap(card, iso8583.ProcPurchase, 8_00, nil)
	if rc := s.send(old); rc != iso8583.RCApproved {
		t.Fatalf("purchase: %s", rc)
	}
	fresh := s.tap(card, iso8583.ProcPurchase, 9_00, nil)
	if rc := s.send(fresh); rc != iso8583.RCApproved {
		t.Fatalf("purchase: %s", rc)
	}
	if rc := s.send(s.reversalOf(fresh)); rc != iso8583.RCApproved {
		t.Fatalf("reversal within the limit: %s", rc)
	}
	time.Sleep(1200 * time.Millisecond)
	if rc := s.send(s.reversalOf(old)); rc != iso8583.RCOriginalNotFound {
		t.Fatalf("reversal past the limit: %s, want 25", rc)
	}
	assertMoneyAgrees(t, d, card.Issuer)
	if held := heldFor(d, card.Issuer, "TERM0451"); held != 8_00 {
		t.Fatalf("the issuer holds %s, want the old purchase's 8.00", held)
	}
}

// TestTermsimRefundsItsLastPurchase: termsim refund names the card's last
// approved purchase at its terminal, or -original; with neither it does not
// send a refund the switch would refuse.
func TestTermsimRefundsItsLastPurchase(t *testing.T) {
	d, _ := startWorld(t)
	run := func(args ...string) (int, termsim.Answer, string) {
		var out, errOut bytes.Buffer
		code := termsim.Run(append(args, "-wallet", d.WalletPath, "-json"), &out, &errOut)
		var a termsim.Answer
		json.Unmarshal(out.Bytes(), &a)
		return code, a, errOut.String()
	}
	if code, _, msg := run("refund", "-card", "approve", "-amount", "1.00"); code != 2 || !strings.Contains(msg, "no purchase") {
		t.Fatalf("refund before any purchase: exit %d, %q", code, msg)
	}
	if code, a, msg := run("pay", "-card", "approve", "-amount", "12.34"); code != 0 || a.RC != "00" {
		t.Fatalf("pay: exit %d rc %s %s", code, a.RC, msg)
	}
	if code, a, msg := run("refund", "-card", "approve", "-amount", "20.00"); code != 0 || a.RC != iso8583.RCInvalidAmount {
		t.Fatalf("refund above the purchase: exit %d rc %s %s", code, a.RC, msg)
	}
	if code, a, msg := run("refund", "-card", "approve", "-amount", "2.00"); code != 0 || a.RC != iso8583.RCApproved {
		t.Fatalf("refund of the last purchase: exit %d rc %s %s", code, a.RC, msg)
	}
	if code, a, msg := run("refund", "-card", "approve", "-amount", "2.00", "-original", "000001/0101000000"); code != 0 || a.RC != iso8583.RCOriginalNotFound {
		t.Fatalf("refund of a purchase never made: exit %d rc %s %s", code, a.RC, msg)
	}
	if code, _, msg := run("refund", "-card", "approve", "-original", "12/34"); code != 2 {
		t.Fatalf("bad -original: exit %d %s", code, msg)
	}
}
