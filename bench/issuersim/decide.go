package issuersim

import (
	"crypto/subtle"
	"fmt"
	"strconv"
	"time"

	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
)

// Bounds of the book.
const (
	// ledgerEntriesMax bounds one issuer's ledger (about 250 MB at the
	// limit); past it, postings are answered 96.
	ledgerEntriesMax = 1_000_000
	// orphanReversalsMax is how many unmatched reversals are remembered to
	// catch a late original.
	orphanReversalsMax = 4096
)

// LedgerEntry is one approved posting: a purchase or top-up (a hold) or a
// refund (a credit). The JSON names are the export format's (snapshot.go);
// PAN marshals masked.
type LedgerEntry struct {
	Seq              uint64         `json:"seq"`
	BusinessDay      string         `json:"business_day"` // YYYYMMDD, by the issuer's cut-off
	Time             time.Time      `json:"time"`
	PAN              iso8583.PAN    `json:"pan"`
	MTI              string         `json:"mti"`
	ProcessingCode   string         `json:"processing_code"`
	Amount           iso8583.Amount `json:"amount"` // minor units
	STAN             string         `json:"stan"`
	TransmissionTime string         `json:"transmission_time"`
	RRN              string         `json:"rrn"`
	TerminalID       string         `json:"terminal_id"`
	AuthCode         string         `json:"auth_code"`
	ResponseCode     string         `json:"response_code"`
	Reversed         bool           `json:"reversed"`
	// Reversal is the reversal that released the posting, zero while it
	// stands. It settles on its own business day.
	Reversal Reversal `json:"reversal,omitzero"`
}

// Reversal is the 0400 or 0420 that reversed a posting: when, and the
// reversal message's own DE11 and DE7.
type Reversal struct {
	Time             time.Time `json:"time"`
	BusinessDay      string    `json:"business_day"`
	MTI              string    `json:"mti"`
	STAN             string    `json:"stan"`
	TransmissionTime string    `json:"transmission_time"`
}

// Account is an issuer's view of one card: the card as loaded, what it may
// spend now, and what is held by approved, unreversed purchases and top-ups.
type Account struct {
	Card      world.Card
	Available iso8583.Amount
	Held      iso8583.Amount
}

// txKey identifies a request to the issuer: the switch's STAN and
// transmission time, as DE90 of a reversal names them.
type txKey struct{ stan, transmissionTime string }

type account struct {
	card     world.Card
	held     iso8583.Amount
	credited iso8583.Amount // refunds, less reversed refunds
}

func (a *account) available() iso8583.Amount {
	funds := a.card.Balance
	if a.card.Product == bintable.ProductCredit {
		funds = a.card.CreditLimit
	}
	return funds + a.credited - a.held
}

// book is an issuer's state. It is not safe for concurrent use: the Issuer
// guards it with its mutex.
type book struct {
	accounts map[string]*account // by clear PAN
	ledger   []LedgerEntry
	byKey    map[txKey]int // ledger index
	orphans  orphanSet
	authSalt uint64
	cutoff   Cutoff
	// operator is a transit member's book of purse loads (load.go); nil
	// for a bank.
	operator *operatorBook
}

func newBook(issuerID string, cards []world.Card, authSalt uint64, cutoff Cutoff) (*book, error) {
	if err := cutoff.Validate(); err != nil {
		return nil, err
	}
	b := &book{
		cutoff:   cutoff,
		accounts: make(map[string]*account),
		byKey:    make(map[txKey]int),
		orphans:  orphanSet{member: make(map[txKey]bool)},
		authSalt: authSalt,
	}
	for _, c := range cards {
		if c.IssuerID != issuerID {
			continue
		}
		if _, dup := b.accounts[c.PAN.Clear()]; dup {
			return nil, fmt.Errorf("card %v listed twice", c.PAN)
		}
		b.accounts[c.PAN.Clear()] = &account{card: c}
	}
	return b, nil
}

// decision is what decide concluded; apply carries it out.
type decision struct {
	rc       string
	authCode string
	balance  string        // DE54, balance inquiries only
	phone    iso8583.Phone // DE48 tag 05, approved account verifications only
	post     *LedgerEntry  // a new approved posting
	reverse  int           // ledger index to reverse, -1 for none
	reversal Reversal      // the reversal's record, when reverse >= 0
	orphan   *txKey        // an unmatched reversal to remember
	// Purse loads (load.go): a new grant, a grant to void (-1 for none;
	// its record in reversal), and DE48 of the answer (tags 41, 42).
	load      *LoadEntry
	void      int
	purseData string
	// note says why, for the request's log line.
	note string
}

func answer(rc string) decision { return decision{rc: rc, reverse: -1, void: -1} }

// decide is the issuer's whole decision: state and request in, decision out.
// It reads b and changes nothing; package doc lists the rules in order.
func decide(b *book, req request, now time.Time) decision {
	if req.invalid != "" {
		return answer(iso8583.RCFormatError)
	}
	switch req.MTI {
	case iso8583.MTIReversalRequest, iso8583.MTIReversalAdvice:
		return decideReversal(b, req, now)
	case iso8583.MTINetworkMgmtRequest:
		switch req.NetworkCode {
		case iso8583.NetSignOn, iso8583.NetSignOff, iso8583.NetEcho:
			return answer(iso8583.RCApproved)
		}
		return answer(iso8583.RCInvalidTransaction)
	}
	if b.operator != nil && isLoad(req) {
		return decideLoad(b, req, now)
	}
	key := txKey{req.STAN, req.TransmissionTime}
	if i, ok := b.byKey[key]; ok {
		return repeat(b.ledger[i], req)
	}
	if b.orphans.member[key] || b.operator.holds(key) {
		return answer(iso8583.RCDuplicate)
	}
	acct, ok := b.accounts[req.PAN.Clear()]
	if !ok {
		return answer(iso8583.RCNoSuchCard)
	}
	advice := req.MTI == iso8583.MTIAdvice
	switch {
	case !advice && acct.card.Status != world.StatusActive:
		return answer(iso8583.RCDoNotHonor)
	case !advice && (acct.card.ExpiredAt(now) || req.Expiry != acct.card.Expiry):
		return answer(iso8583.RCExpiredCard)
	}
	return decideByCode(b, acct, req, now)
}

func decideByCode(b *book, acct *account, req request, now time.Time) decision {
	switch req.ProcessingCode {
	case iso8583.ProcPurchase, iso8583.ProcTransitTopUp:
		if isAccountVerification(req) {
			return verifyAccount(b, acct, req)
		}
		if req.Amount == 0 {
			return answer(iso8583.RCInvalidAmount)
		}
		if req.MTI != iso8583.MTIAdvice && req.Amount > acct.available() {
			return answer(iso8583.RCInsufficientFunds)
		}
		return b.approve(req, now)
	case iso8583.ProcRefund:
		if req.Amount == 0 {
			return answer(iso8583.RCInvalidAmount)
		}
		return b.approve(req, now)
	case iso8583.ProcBalanceInquiry:
		d := answer(iso8583.RCApproved)
		d.balance = balanceField(acct.card.Product, acct.available())
		return d
	}
	return answer(iso8583.RCInvalidTransaction)
}

// isAccountVerification: an 0100 purchase of amount zero with a CVN2 in
// DE48 asks whether the card may be bound to a wallet.
func isAccountVerification(req request) bool {
	return req.MTI == iso8583.MTIAuthRequest && req.ProcessingCode == iso8583.ProcPurchase &&
		req.Amount == 0 && req.CVN2 != ""
}

// verifyAccount answers an account verification of a card already found
// active, unexpired and with the right expiry: 00 when the CVN2 matches, 05
// when it does not. It posts nothing. The approval code comes from the
// STAN, since there is no posting to number it. An approval carries the
// cardholder's phone number on file (DE48 tag 05), where the switch sends
// the one-time code; a card with no number on file is approved without it,
// and the switch refuses to bind it.
func verifyAccount(b *book, acct *account, req request) decision {
	want := acct.card.CVN2()
	if subtle.ConstantTimeCompare([]byte(req.CVN2.Clear()), []byte(want.Clear())) != 1 {
		return answer(iso8583.RCDoNotHonor)
	}
	d := answer(iso8583.RCApproved)
	d.phone = acct.card.Phone
	stan, _ := strconv.ParseUint(req.STAN, 10, 64) // six digits: parseRequest checked DE11
	d.authCode = authCode(verificationCodeBit|stan, b.authSalt)
	return d
}

// verificationCodeBit keeps the approval codes of verifications apart from
// those of postings, numbered from 1.
const verificationCodeBit = 1 << 63

// approve returns an approval that posts req to the ledger.
func (b *book) approve(req request, now time.Time) decision {
	if len(b.ledger) >= ledgerEntriesMax {
		return answer(iso8583.RCSystemError)
	}
	seq := uint64(len(b.ledger)) + 1
	d := answer(iso8583.RCApproved)
	d.authCode = authCode(seq, b.authSalt)
	d.post = &LedgerEntry{
		Seq: seq, BusinessDay: b.cutoff.BusinessDay(now), Time: now.UTC(), PAN: req.PAN, MTI: req.MTI, ProcessingCode: req.ProcessingCode,
		Amount: req.Amount, STAN: req.STAN, TransmissionTime: req.TransmissionTime,
		RRN: req.RRN, TerminalID: req.TerminalID, AuthCode: d.authCode, ResponseCode: d.rc,
	}
	return d
}

// repeat answers a request whose key an approved posting already holds: the
// same request again (a retry, a re-sent advice) gets the first answer and
// no second posting; anything else reusing the key is a duplicate.
func repeat(e LedgerEntry, req request) decision {
	if e.Reversed || e.MTI != req.MTI || e.PAN != req.PAN ||
		e.ProcessingCode != req.ProcessingCode || e.Amount != req.Amount {
		return answer(iso8583.RCDuplicate)
	}
	d := answer(e.ResponseCode)
	d.authCode = e.AuthCode
	return d
}

func decideReversal(b *book, req request, now time.Time) decision {
	key := txKey{req.Original.STAN, req.Original.TransmissionTime}
	if b.operator != nil {
		if i, ok := b.operator.byKey[key]; ok {
			return decideVoid(b, i, req, now)
		}
	}
	i, ok := b.byKey[key]
	if !ok {
		d := answer(iso8583.RCOriginalNotFound)
		d.orphan = &key
		return d
	}
	e := b.ledger[i]
	if e.MTI != req.Original.MTI || e.PAN != req.PAN {
		return answer(iso8583.RCOriginalNotFound)
	}
	d := answer(iso8583.RCApproved)
	if !e.Reversed {
		d.reverse = i
		d.reversal = Reversal{Time: now.UTC(), BusinessDay: b.cutoff.BusinessDay(now),
			MTI: req.MTI, STAN: req.STAN, TransmissionTime: req.TransmissionTime}
	}
	return d
}

// apply carries out a decision of decide on the same state.
func (b *book) apply(d decision) {
	if d.post != nil {
		e := *d.post
		acct := b.accounts[e.PAN.Clear()]
		if e.ProcessingCode == iso8583.ProcRefund {
			acct.credited += e.Amount
		} else {
			acct.held += e.Amount
		}
		b.byKey[txKey{e.STAN, e.TransmissionTime}] = len(b.ledger)
		b.ledger = append(b.ledger, e)
	}
	if d.reverse >= 0 {
		e := &b.ledger[d.reverse]
		acct := b.accounts[e.PAN.Clear()]
		if e.ProcessingCode == iso8583.ProcRefund {
			acct.credited -= e.Amount
		} else {
			acct.held -= e.Amount
		}
		e.Reversed, e.Reversal = true, d.reversal
	}
	if d.orphan != nil {
		b.orphans.add(*d.orphan)
	}
	if b.operator != nil {
		b.operator.apply(d)
	}
}

// balanceField formats DE54 as the package doc describes.
func balanceField(p bintable.Product, available iso8583.Amount) string {
	accountType := "10"
	switch p {
	case bintable.ProductCredit:
		accountType = "30"
	case bintable.ProductTransit:
		accountType = "00"
	}
	sign := 'C'
	if available < 0 {
		sign, available = 'D', -available
	}
	return fmt.Sprintf("%s02%s%c%012d", accountType, iso8583.CurrencyCNY, sign, int64(available))
}

// authCode derives a 6-digit approval code from the posting's sequence, so a
// run is reproducible; the salt keeps issuers' codes apart.
func authCode(seq, salt uint64) string {
	// Multiply before mixing in the salt, so no sequence number cancels it
	// (seq ^ salt == 0 gave every issuer's first approval 000000).
	x := seq*0x9e3779b97f4a7c15 ^ salt
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	x %= 1_000_000
	var code [6]byte // "%06d", without fmt's allocations
	for i := len(code) - 1; i >= 0; i-- {
		code[i] = byte('0' + x%10)
		x /= 10
	}
	return string(code[:])
}

// orphanSet remembers the last orphanReversalsMax unmatched reversal keys.
type orphanSet struct {
	ring   [orphanReversalsMax]txKey
	next   int
	count  int
	member map[txKey]bool
}

func (o *orphanSet) add(k txKey) {
	if o.member[k] {
		return
	}
	if o.count == orphanReversalsMax {
		delete(o.member, o.ring[o.next])
	} else {
		o.count++
	}
	o.ring[o.next] = k
	o.member[k] = true
	o.next = (o.next + 1) % orphanReversalsMax
}
