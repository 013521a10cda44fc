package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/node"
)

// money is what one side says an issuer holds from the switch's traffic:
// every approval still standing, by the issuer-side request that carried it
// (STAN and transmission time), with its amount.
type money map[string]iso8583.Amount

func (m money) total() (sum iso8583.Amount) {
	for _, a := range m {
		sum += a
	}
	return sum
}

// journalMoney reads what the journal says issuer id holds: approvals of
// purchases and top-ups that were not reversed.
func journalMoney(t *testing.T, j *journal.Journal, issuerID string) money {
	t.Helper()
	m := money{}
	days, err := j.Days()
	if err != nil {
		t.Fatal(err)
	}
	for _, day := range days {
		err := j.ScanDay(day, func(e journal.Entry) error {
			if e.IssuerID != issuerID || e.ResponseCode != iso8583.RCApproved || e.OriginalSTAN != "" {
				return nil
			}
			if e.ProcessingCode != iso8583.ProcPurchase && e.ProcessingCode != iso8583.ProcTransitTopUp {
				return nil
			}
			if _, reversed, err := j.ReversalOf(e.Key()); err != nil || reversed {
				return err
			}
			m[e.IssuerSTAN+"/"+e.IssuerTransmissionTime] = e.Amount
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return m
}

// issuerMoney reads the same from the simulated issuer's own ledger.
func issuerMoney(d *DevWorld, issuerID string) money {
	m := money{}
	for _, l := range d.Fleet.Issuer(issuerID).Ledger() {
		if l.Reversed || (l.ProcessingCode != iso8583.ProcPurchase && l.ProcessingCode != iso8583.ProcTransitTopUp) {
			continue
		}
		m[l.STAN+"/"+l.TransmissionTime] = l.Amount
	}
	return m
}

// assertMoneyAgrees waits for the store and forward to drain, then checks
// the issuer holds exactly what the journal says, to the fen.
func assertMoneyAgrees(t *testing.T, d *DevWorld, issuerID string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		counts, err := d.Node.Journal.AdviceCounts()
		if err != nil {
			t.Fatal(err)
		}
		if counts[journal.AdviceDue] == 0 && counts[journal.AdviceArmed] == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("advices not drained: %v", counts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	j, is := journalMoney(t, d.Node.Journal, issuerID), issuerMoney(d, issuerID)
	for k, a := range j {
		if is[k] != a {
			t.Errorf("journal approval %s of %s: issuer holds %s", k, a, is[k])
		}
	}
	for k, a := range is {
		if _, ok := j[k]; !ok {
			t.Errorf("issuer holds %s for %s that the journal does not approve", a, k)
		}
	}
	if j.total() != is.total() {
		t.Errorf("journal says %s, issuer %s holds %s", j.total(), issuerID, is.total())
	}
}

// terminal is one test terminal with its own STANs.
type terminal struct {
	t    *testing.T
	c    *pos.Client
	id   string
	stan int
}

func newTerminal(t *testing.T, d *DevWorld, id string) *terminal {
	c, err := pos.Dial(d.Node.TerminalAddr(), time.Second, d.AcquirerKeys)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &terminal{t: t, c: c, id: id}
}

func (tm *terminal) tap(card wallet.Card, pc string, amount iso8583.Amount) *moov.Message {
	tm.stan++
	term := pos.DemoTerminal
	term.TerminalID = tm.id
	return pos.Tap{Terminal: term, ProcessingCode: pc, Token: card.Token, TokenExpiry: card.TokenExpiry,
		Amount: amount, STAN: fmt.Sprintf("%06d", tm.stan), Time: time.Now()}.WithCard(card).Message()
}

// refundOf builds the terminal's refund of amount against orig, an earlier
// purchase of this terminal, named in DE90.
func (tm *terminal) refundOf(card wallet.Card, orig *moov.Message, amount iso8583.Amount) *moov.Message {
	tm.stan++
	term := pos.DemoTerminal
	term.TerminalID = tm.id
	return pos.Tap{Terminal: term, ProcessingCode: iso8583.ProcRefund, Token: card.Token, TokenExpiry: card.TokenExpiry,
		Amount: amount, STAN: fmt.Sprintf("%06d", tm.stan), Time: time.Now(), Original: pos.OriginalOf(orig)}.WithCard(card).Message()
}

func (tm *terminal) do(msg *moov.Message) (rc, auth string) {
	tm.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := tm.c.Do(ctx, msg)
	if err != nil {
		tm.t.Fatal(err)
	}
	return iso8583.FieldValue(resp, iso8583.FieldResponseCode), iso8583.FieldValue(resp, iso8583.FieldAuthCode)
}

// reversalOf builds the terminal's 0400 for an earlier request.
func (tm *terminal) reversalOf(orig *moov.Message) *moov.Message {
	tm.stan++
	m := iso8583.NewMessage()
	m.MTI(iso8583.MTIReversalRequest)
	for _, id := range []int{iso8583.FieldPAN, iso8583.FieldProcessingCode, iso8583.FieldAmount,
		iso8583.FieldAcquirer, iso8583.FieldRRN, iso8583.FieldTerminalID, iso8583.FieldMerchantID, iso8583.FieldCurrency} {
		m.Field(id, iso8583.FieldValue(orig, id))
	}
	m.Field(iso8583.FieldTransmissionTime, time.Now().UTC().Format("0102150405"))
	m.Field(iso8583.FieldSTAN, fmt.Sprintf("%06d", tm.stan))
	mti, _ := orig.GetMTI()
	m.Field(iso8583.FieldOriginalData, mti+iso8583.FieldValue(orig, iso8583.FieldSTAN)+
		iso8583.FieldValue(orig, iso8583.FieldTransmissionTime)+"000"+pos.DemoTerminal.Acquirer+"00000000000")
	return m
}

func TestReversalReleasesTheHoldOnce(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	tm := newTerminal(t, d, "TERM0301")
	purchase := tm.tap(card, iso8583.ProcPurchase, 12_34)
	if rc, _ := tm.do(purchase); rc != "00" {
		t.Fatalf("purchase %s", rc)
	}
	kept := tm.tap(card, iso8583.ProcPurchase, 5_00)
	tm.do(kept)
	reversal := tm.reversalOf(purchase)
	if rc, _ := tm.do(reversal); rc != "00" {
		t.Fatalf("reversal %s", rc)
	}
	if rc, _ := tm.do(reversal); rc != "00" {
		t.Fatalf("the same reversal again: %s", rc)
	}
	if rc, _ := tm.do(tm.reversalOf(purchase)); rc != "00" {
		t.Fatalf("a second reversal of the same original: %s", rc)
	}
	assertMoneyAgrees(t, d, card.Issuer)
	if got := issuerMoney(d, card.Issuer).total(); got != 5_00 {
		t.Fatalf("issuer holds %s after the reversal, want 5.00", got)
	}
	reversed := 0
	for _, l := range d.Fleet.Issuer(card.Issuer).Ledger() {
		if l.Reversed {
			reversed++
		}
	}
	if reversed != 1 {
		t.Fatalf("%d ledger entries reversed, want 1", reversed)
	}
}

func TestReversalOfUnknownOriginal(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	tm := newTerminal(t, d, "TERM0302")
	never := tm.tap(card, iso8583.ProcPurchase, 1_00) // built, never sent
	if rc, _ := tm.do(tm.reversalOf(never)); rc != iso8583.RCOriginalNotFound {
		t.Fatalf("reversal of nothing: %s, want 25", rc)
	}
}

func TestDuplicatesAnsweredFromTheJournal(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	tm := newTerminal(t, d, "TERM0303")
	req := tm.tap(card, iso8583.ProcPurchase, 7_00)
	rc1, auth1 := tm.do(req)
	packed, _ := iso8583.Pack(req)
	again, _ := iso8583.Unpack(packed)
	rc2, auth2 := tm.do(again)
	if rc1 != "00" || rc2 != rc1 || auth2 != auth1 {
		t.Fatalf("first %s/%s, repeat %s/%s", rc1, auth1, rc2, auth2)
	}
	other, _ := iso8583.Unpack(packed)
	other.Field(iso8583.FieldAmount, iso8583.Amount(8_00).Field())
	if rc, _ := tm.do(other); rc != iso8583.RCDuplicate {
		t.Fatalf("same key, other amount: %s, want 94", rc)
	}
	if n := len(d.Fleet.Issuer(card.Issuer).Ledger()); n != 1 {
		t.Fatalf("issuer was asked %d times", n)
	}
	assertMoneyAgrees(t, d, card.Issuer)
}

// TestSealedDayIsComplete seals today as if it had closed: the sealed file
// holds every journaled entry, and nothing can be added to the day after.
func TestSealedDayIsComplete(t *testing.T) {
	d, w := startWorld(t)
	card, _ := w.Card("approve")
	tm := newTerminal(t, d, "TERM0304")
	for range 3 {
		tm.do(tm.tap(card, iso8583.ProcPurchase, 1_00))
	}
	day := d.Node.Journal.BusinessDayOf(time.Now())
	d.Node.SealClosedDays(time.Now().Add(48 * time.Hour))
	path := filepath.Join(node.SealedDir(d.Data), journal.SealedFileName("node-1", day))
	n := 0
	if _, _, err := journal.ReadSealed(path, func(journal.Entry) error { n++; return nil }); err != nil || n != 3 {
		t.Fatalf("sealed file: %d entries, %v", n, err)
	}
	if rc, _ := tm.do(tm.tap(card, iso8583.ProcPurchase, 1_00)); rc != iso8583.RCSystemError {
		t.Fatalf("a tap into a sealed day: %s, want 96", rc)
	}
}
