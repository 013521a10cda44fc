package issuersim

import (
	"crypto/hmac"
	"errors"
	"slices"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/settlement/transit"
)

// OperatorKeyBytes is the length of a transit operator's master key.
const OperatorKeyBytes = 32

// loadEntriesMax bounds one operator's load book, as ledgerEntriesMax
// bounds the ledger; past it, loads are answered 96.
const loadEntriesMax = 1_000_000

// LoadEntry is one load or opening the operator granted: leg 2 of a
// top-up (package doc, "Purse loads"). The JSON names are the export
// format's (snapshot.go); Card marshals masked.
type LoadEntry struct {
	Seq            uint64         `json:"seq"`
	BusinessDay    string         `json:"business_day"` // YYYYMMDD, by the operator's cut-off
	Time           time.Time      `json:"time"`
	Card           iso8583.PAN    `json:"card"`
	MTI            string         `json:"mti"`
	ProcessingCode string         `json:"processing_code"` // 220000 load, 720000 opening
	Amount         iso8583.Amount `json:"amount"`          // fen
	// BalanceBefore, Counter and Sequence are the purse's state as it
	// signed it in tag 40 (an opening's are 0, 0 and 1).
	BalanceBefore    int64  `json:"balance_before"`
	Counter          uint16 `json:"counter"`
	Sequence         uint32 `json:"sequence"`
	BalanceAfter     int64  `json:"balance_after"`
	STAN             string `json:"stan"`
	TransmissionTime string `json:"transmission_time"`
	RRN              string `json:"rrn"`
	TerminalID       string `json:"terminal_id"`
	AuthCode         string `json:"auth_code"`
	// Voided: a reversal advice said the purse never took the grant. Its
	// sequence is free again; a voided opening's card is unregistered.
	Voided bool     `json:"voided"`
	Void   Reversal `json:"void,omitzero"`
	// mac1 is the request's MAC1, to tell a retry from a different
	// request under the same key. Not exported: it is no book entry.
	mac1 [transit.LoadMACBytes]byte
}

// operatorBook is a transit member's book of purse loads, beside its
// bank-style ledger. The registry (purses) knows a card from its grants:
// it is in memory only, so a restarted operator knows no card.
type operatorBook struct {
	issuerID string
	master   []byte // nil: no key, loads are answered 91
	bins     *bintable.Table
	loads    []LoadEntry
	byKey    map[txKey]int // load index
	// purses has, per card with a grant standing, the indices of its
	// grants not voided, in sequence order.
	purses map[string][]int
}

func newOperatorBook(issuerID string, master []byte, bins *bintable.Table) *operatorBook {
	return &operatorBook{issuerID: issuerID, master: master, bins: bins,
		byKey: make(map[txKey]int), purses: make(map[string][]int)}
}

// owns reports whether card is a well-formed transit card of a BIN the
// network routes to this operator.
func (op *operatorBook) owns(card string) bool {
	if !transit.ValidCard(card) {
		return false
	}
	e, ok := op.bins.Lookup(card)
	return ok && e.Issuer == op.issuerID && e.Product == bintable.ProductTransit
}

func (op *operatorBook) purseKey(card string) [transit.PurseKeyBytes]byte {
	return transit.PurseKey(op.master, card)
}

// isLoad reports whether req is leg 2 of a top-up: a load or an opening.
func isLoad(req request) bool {
	return req.MTI == iso8583.MTIFinancialRequest &&
		(req.ProcessingCode == iso8583.ProcPurseLoad || req.ProcessingCode == iso8583.ProcPurseOpen)
}

// loadCodeBit keeps the approval codes of loads apart from those of
// postings and verifications.
const loadCodeBit = 1 << 62

// decideLoad is the operator's decision on a load or opening that parsed
// (parseRequest checked the fields and tag 40); package doc lists the
// rules in order.
func decideLoad(b *book, req request, now time.Time) decision {
	op := b.operator
	key := txKey{req.STAN, req.TransmissionTime}
	if i, ok := op.byKey[key]; ok {
		return op.repeat(op.loads[i], req)
	}
	if _, ok := b.byKey[key]; ok || b.orphans.member[key] {
		return answer(iso8583.RCDuplicate)
	}
	card := req.PAN.Clear()
	if !op.owns(card) {
		return answer(iso8583.RCNoSuchCard)
	}
	if op.master == nil {
		return noted(iso8583.RCIssuerUnavailable, "no operator master key")
	}
	opening := req.ProcessingCode == iso8583.ProcPurseOpen
	pk := op.purseKey(card)
	lr := loadRequestOf(req)
	if opening {
		// No purse yet to sign: the operator grants sequence 1 on the state
		// it registers, balance 0 and counter 0.
		lr.MAC = transit.RequestMAC(pk, &lr)
	}
	g, err := transit.Grant(pk, &lr)
	switch {
	case errors.Is(err, transit.ErrBadAmount) || errors.Is(err, transit.ErrOverBalance):
		return answer(iso8583.RCInvalidAmount)
	case errors.Is(err, transit.ErrLoadMAC):
		return noted(iso8583.RCSecurityViolation, "MAC1 does not verify")
	case err != nil: // the card and the sequence were checked before: a bug
		return answer(iso8583.RCSystemError)
	}
	grants, known := op.purses[card]
	switch {
	case opening && known:
		return noted(iso8583.RCDuplicate, "opening of a card already registered")
	case known && lr.Sequence != op.loads[grants[len(grants)-1]].Sequence+1:
		return noted(iso8583.RCDuplicate, "load sequence is not the last granted + 1")
	}
	if len(op.loads) >= loadEntriesMax {
		return answer(iso8583.RCSystemError)
	}
	seq := uint64(len(op.loads)) + 1
	d := answer(iso8583.RCApproved)
	d.authCode = authCode(loadCodeBit|seq, b.authSalt)
	d.load = &LoadEntry{
		Seq: seq, BusinessDay: b.cutoff.BusinessDay(now), Time: now.UTC(), Card: req.PAN, MTI: req.MTI,
		ProcessingCode: req.ProcessingCode, Amount: req.Amount,
		BalanceBefore: lr.Balance, Counter: lr.Counter, Sequence: lr.Sequence, BalanceAfter: g.BalanceAfter,
		STAN: req.STAN, TransmissionTime: req.TransmissionTime, RRN: req.RRN, TerminalID: req.TerminalID,
		AuthCode: d.authCode, mac1: lr.MAC,
	}
	d.purseData = grantField(g, pk, opening)
	return d
}

func noted(rc, note string) decision {
	d := answer(rc)
	d.note = note
	return d
}

// loadRequestOf is the purse's request as transit signs it: DE2, DE4 and
// tag 40, or an opening's {balance 0, counter 0, sequence 1}.
func loadRequestOf(req request) transit.LoadRequest {
	lr := transit.LoadRequest{Card: req.PAN.Clear(), Amount: int64(req.Amount), Sequence: 1}
	if r := req.Purse.Request; r != nil {
		lr.Balance, lr.Counter, lr.Sequence, lr.MAC = r.Balance, r.Counter, r.Sequence, r.MAC
	}
	return lr
}

// grantField is DE48 of a granted load: tag 41, and tag 42 for an opening.
func grantField(g transit.LoadGrant, pk [transit.PurseKeyBytes]byte, opening bool) string {
	d := iso8583.PurseLoadData{Grant: &iso8583.PurseLoadGrant{BalanceAfter: g.BalanceAfter, MAC: g.MAC}}
	if opening {
		k := iso8583.PurseKey(pk)
		d.Key = &k
	}
	s, err := d.Encode()
	if err != nil {
		// transit.Grant keeps the balance within AmountMax, far inside 12
		// digits: a bug.
		panic("issuersim: a grant does not encode: " + err.Error())
	}
	return s
}

// repeat answers a load whose key a grant already holds: the same request
// again (the switch retrying) gets the first answer, grant and key
// included; anything else under the key, or a retry of a voided grant, 94.
func (op *operatorBook) repeat(e LoadEntry, req request) decision {
	lr := loadRequestOf(req)
	if req.ProcessingCode == iso8583.ProcPurseOpen {
		lr.Balance, lr.Counter, lr.Sequence, lr.MAC = e.BalanceBefore, e.Counter, e.Sequence, e.mac1
	}
	if e.Voided || e.MTI != req.MTI || e.Card != req.PAN || e.ProcessingCode != req.ProcessingCode ||
		e.Amount != req.Amount || e.BalanceBefore != lr.Balance || e.Counter != lr.Counter ||
		e.Sequence != lr.Sequence || !hmac.Equal(e.mac1[:], lr.MAC[:]) {
		return answer(iso8583.RCDuplicate)
	}
	pk := op.purseKey(e.Card.Clear())
	d := answer(iso8583.RCApproved)
	d.authCode = e.AuthCode
	d.purseData = grantField(transit.LoadGrant{BalanceAfter: e.BalanceAfter, MAC: transit.GrantMAC(pk, &lr)},
		pk, e.ProcessingCode == iso8583.ProcPurseOpen)
	return d
}

// decideVoid answers a reversal whose original is load i: the grant is
// voided (once; again is 00 and changes nothing) when the reversal names
// the original's MTI and card, else 25.
func decideVoid(b *book, i int, req request, now time.Time) decision {
	e := b.operator.loads[i]
	if e.MTI != req.Original.MTI || e.Card != req.PAN {
		return answer(iso8583.RCOriginalNotFound)
	}
	d := answer(iso8583.RCApproved)
	if !e.Voided {
		d.void = i
		d.reversal = Reversal{Time: now.UTC(), BusinessDay: b.cutoff.BusinessDay(now),
			MTI: req.MTI, STAN: req.STAN, TransmissionTime: req.TransmissionTime}
	}
	return d
}

// apply carries out the load part of a decision (book.apply calls it).
func (op *operatorBook) apply(d decision) {
	if d.load != nil {
		i := len(op.loads)
		op.loads = append(op.loads, *d.load)
		op.byKey[txKey{d.load.STAN, d.load.TransmissionTime}] = i
		card := d.load.Card.Clear()
		op.purses[card] = append(op.purses[card], i)
	}
	if d.void >= 0 {
		e := &op.loads[d.void]
		e.Voided, e.Void = true, d.reversal
		card := e.Card.Clear()
		grants := slices.DeleteFunc(op.purses[card], func(j int) bool { return j == d.void })
		if len(grants) == 0 {
			delete(op.purses, card) // unknown again: its next load is taken at its word
		} else {
			op.purses[card] = grants
		}
	}
}

// holds reports whether a load holds key; false on a bank's nil book.
func (op *operatorBook) holds(key txKey) bool {
	if op == nil {
		return false
	}
	_, ok := op.byKey[key]
	return ok
}
