package authorize

import (
	"context"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// decideRefund is decide for every request, with a refund first held to
// its original (CheckRefund) or, naming none, to its merchant's rule
// (CheckRefundWithoutOriginal). A refused refund is journaled with its
// code and never reaches the issuer; an approved one carries the original's
// new refunded total into the same batch as its entry. The caller holds
// the original's key lock, so the total read here is still the total when
// the batch commits.
func (p *Pipeline) decideRefund(ctx context.Context, req Request, m acquirer.Merchant, now time.Time) (journal.Entry, issuerReply, *journal.Change) {
	if req.ProcessingCode != iso8583.ProcRefund {
		return p.decide(ctx, req, now)
	}
	refunded, rc, reason, err := p.refundCheck(req, m)
	if err != nil {
		p.d.Log.Error().Err(err).Msg("refund's original unreadable")
		rc, reason = iso8583.RCSystemError, "journal read failed"
	}
	if rc != "" {
		p.logRefusal(req, rc, reason)
		entry := newEntry(req, now, p.d.NodeID)
		entry.ResponseCode = rc
		return entry, issuerReply{}, nil
	}
	entry, reply, change := p.decide(ctx, req, now)
	if req.HasOriginal() && entry.ResponseCode == iso8583.RCApproved {
		if change == nil {
			change = &journal.Change{}
		}
		change.Refunded = &journal.Refunded{Original: req.Original, Total: refunded + req.Amount}
	}
	return entry, reply, change
}

// refundCheck reads what CheckRefund needs from the journal and applies it;
// it returns the original's refunded total so far.
func (p *Pipeline) refundCheck(req Request, m acquirer.Merchant) (iso8583.Amount, string, string, error) {
	if !req.HasOriginal() {
		rc, reason := CheckRefundWithoutOriginal(req, m.RefundsWithoutOriginal)
		return 0, rc, reason, nil
	}
	orig, found, err := p.d.Journal.Lookup(req.Original)
	if err != nil {
		return 0, "", "", err
	}
	_, reversed, err := p.d.Journal.ReversalOf(req.Original)
	if err != nil {
		return 0, "", "", err
	}
	refunded, err := p.d.Journal.RefundedOf(req.Original)
	if err != nil {
		return 0, "", "", err
	}
	rc, reason := CheckRefund(req, orig, found, reversed, refunded)
	return refunded, rc, reason, nil
}
