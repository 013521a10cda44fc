package authorize

import (
	"context"
	"fmt"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/metrics"
)

// reversalMandatory are the data elements a terminal's 0400/0420 must carry.
var reversalMandatory = []int{
	iso8583.FieldPAN, iso8583.FieldProcessingCode, iso8583.FieldAmount,
	iso8583.FieldTransmissionTime, iso8583.FieldSTAN, iso8583.FieldTerminalID,
	iso8583.FieldOriginalData, iso8583.FieldAcquirer, iso8583.FieldMerchantID,
}

// Reversal is a terminal's 0400 or 0420: the request fields it carries and
// the key of the original it reverses (DE90: original MTI, STAN,
// transmission time, acquirer, forwarder; the terminal is the same).
type Reversal struct {
	Request
	Original journal.Key
}

// ParseReversal reads a terminal's reversal. An error means 30.
func ParseReversal(msg *moov.Message) (Reversal, error) {
	for _, id := range reversalMandatory {
		if msg.GetField(id) == nil {
			return Reversal{}, fmt.Errorf("mandatory DE%d missing", id)
		}
	}
	get := func(id int) string { return iso8583.FieldValue(msg, id) }
	r := Reversal{Request: Request{
		ProcessingCode: get(iso8583.FieldProcessingCode), Token: iso8583.PAN(get(iso8583.FieldPAN)),
		Currency: get(iso8583.FieldCurrency), TransmissionTime: get(iso8583.FieldTransmissionTime),
		STAN: get(iso8583.FieldSTAN), Acquirer: get(iso8583.FieldAcquirer), RRN: get(iso8583.FieldRRN),
		TerminalID: get(iso8583.FieldTerminalID), MerchantID: get(iso8583.FieldMerchantID),
		MCC: get(iso8583.FieldMCC),
	}}
	r.MTI, _ = msg.GetMTI()
	amount, err := iso8583.ParseAmountField(get(iso8583.FieldAmount))
	if err != nil {
		return Reversal{}, err
	}
	r.Amount = amount
	_, r.Original = originalData(get(iso8583.FieldOriginalData), r.TerminalID)
	if r.TerminalID == "" {
		return Reversal{}, fmt.Errorf("DE41 must not be blank")
	}
	if r.Original == r.Key() {
		return Reversal{}, fmt.Errorf("DE90 names the reversal itself")
	}
	return r, nil
}

// reverse answers a terminal's reversal. The original is found by DE90
// at the reversal's own terminal, which the MAC authenticated, and must be
// the same merchant's and acquirer's, and younger than ReversalAgeMax
// (CheckReversal); otherwise 25, and nobody's hold is released. A reversal
// of an approval is journaled with the original's index marked reversed
// and an 0420 advice queued in the same batch, and answered 00 at once:
// the store and forward delivers it to the issuer, however long the issuer
// takes. The same reversal again gets the same answer; another reversal of
// an already reversed original gets 00 and queues nothing.
func (p *Pipeline) reverse(ctx context.Context, msg *moov.Message, from acquirer.Identity) (*moov.Message, outcome) {
	rev, err := ParseReversal(msg)
	if err != nil {
		p.d.Metrics.FormatError(metrics.StageRequest)
		return EchoAnswer(msg, iso8583.RCFormatError), outcome{rc: iso8583.RCFormatError}
	}
	if rc, reason := CheckAcceptor(from, rev.Acquirer, rev.MerchantID, rev.MCC); rc != "" {
		p.logRefusal(rev.Request, rc, reason)
		return reversalAnswer(msg, rc), outcome{rc: rc}
	}
	unlock, err := p.lockKeys(ctx, []journal.Key{rev.Key(), rev.Original})
	if err != nil {
		return reversalAnswer(msg, iso8583.RCSystemError), outcome{rc: iso8583.RCSystemError}
	}
	defer unlock()
	prior, found, absent, err := p.d.Journal.Find(rev.Key())
	if err != nil {
		return reversalAnswer(msg, iso8583.RCSystemError), outcome{rc: iso8583.RCSystemError}
	} else if found {
		rc := prior.ResponseCode
		if prior.RequestDigest != rev.Digest() {
			rc = iso8583.RCDuplicate
		}
		return reversalAnswer(msg, rc), outcome{rc: rc, issuer: prior.IssuerID}
	}
	entry, change, err := p.decideReversal(rev)
	if err != nil {
		p.d.Log.Error().Err(err).Msg("reversal look-up failed")
		return reversalAnswer(msg, iso8583.RCSystemError), outcome{rc: iso8583.RCSystemError}
	}
	if err := p.d.Journal.AppendAbsent(&entry, change, absent); err != nil {
		p.d.Log.Error().Err(err).Str("stan", rev.STAN).Msg("reversal not journaled: 96")
		return reversalAnswer(msg, iso8583.RCSystemError), outcome{rc: iso8583.RCSystemError}
	}
	if change != nil {
		p.d.AdviceQueued()
	}
	p.d.Log.WithLevel(p.d.TransactionLevel).Str("mti", rev.MTI).Str("terminal", rev.TerminalID).Str("stan", rev.STAN).
		Str("original_stan", rev.Original.STAN).Str("rc", entry.ResponseCode).Msg("reversal")
	return reversalAnswer(msg, entry.ResponseCode), outcome{rc: entry.ResponseCode, issuer: entry.IssuerID}
}

// decideReversal finds the original and says what the reversal does.
func (p *Pipeline) decideReversal(rev Reversal) (journal.Entry, *journal.Change, error) {
	now := p.d.Now()
	entry := newEntry(rev.Request, now, p.d.NodeID)
	entry.OriginalSTAN, entry.OriginalTransmissionTime = rev.Original.STAN, rev.Original.TransmissionTime
	orig, found, err := p.d.Journal.Lookup(rev.Original)
	if err != nil {
		return entry, nil, err
	}
	var refunded iso8583.Amount
	if found {
		if refunded, err = p.d.Journal.RefundedOf(rev.Original); err != nil {
			return entry, nil, err
		}
	}
	if rc, reason := CheckReversal(rev, orig, found, refunded, now, p.d.ReversalAgeMax); rc != "" {
		p.logRefusal(rev.Request, rc, reason)
		entry.ResponseCode = rc
		return entry, nil, nil
	}
	// Answered 00 from here on. Only a reversal that gives money back
	// names the issuer and carries the original's settlement fields: one
	// that finds nothing to give back (the original was declined, or was
	// reversed already) is journaled unrouted, so settlement skips it.
	entry.ResponseCode = iso8583.RCApproved
	if orig.ResponseCode != iso8583.RCApproved {
		return entry, nil, nil
	}
	if _, reversed, err := p.d.Journal.ReversalOf(rev.Original); err != nil || reversed {
		return entry, nil, err
	}
	entry.IssuerID, entry.Product, entry.PANSealed = orig.IssuerID, orig.Product, orig.PANSealed
	entry.MCC, entry.Acquirer, entry.MerchantID, entry.RRN = orig.MCC, orig.Acquirer, orig.MerchantID, orig.RRN
	entry.ProcessingCode, entry.CardExpiry = orig.ProcessingCode, orig.CardExpiry
	entry.IssuerSTAN, entry.IssuerTransmissionTime = orig.IssuerSTAN, orig.IssuerTransmissionTime
	return entry, &journal.Change{
		MarkReversed: true,
		Enqueue:      []journal.Advice{{Kind: journal.AdviceReversal, Entry: orig}},
	}, nil
}

// reversalAnswer answers a reversal, echoing its matching fields.
func reversalAnswer(msg *moov.Message, rc string) *moov.Message {
	resp := EchoAnswer(msg, rc)
	if v := iso8583.FieldValue(msg, iso8583.FieldOriginalData); v != "" && iso8583.CheckField(iso8583.FieldOriginalData, []byte(v)) == nil {
		resp.Field(iso8583.FieldOriginalData, v)
	}
	return resp
}
