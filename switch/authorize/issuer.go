package authorize

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/link"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// forward asks the issuer, in the order that keeps money safe: the
// request's reversal is armed (durable) before the request leaves; the
// outcome's Append disarms it when the issuer answered, or makes it due
// when the request may have reached the issuer unanswered. Without an
// answer the switch stands in when the issuer's rules allow, else 91.
func (p *Pipeline) forward(ctx context.Context, req Request, tok vault.Token, route bintable.Entry, entry *journal.Entry, now time.Time) (journal.Entry, issuerReply, *journal.Change) {
	entry.IssuerID, entry.Product, entry.CardExpiry = route.Issuer, string(route.Product), tok.CardExpiry
	is, ok := p.d.Issuers[route.Issuer]
	if !ok {
		entry.ResponseCode = iso8583.RCNoRoute
		return *entry, issuerReply{}, nil
	}
	entry.IssuerSTAN = is.Link.NextSTAN()
	entry.IssuerTransmissionTime = now.UTC().Format("0102150405")
	armed := *entry
	armed.ResponseCode = iso8583.RCIssuerUnavailable
	armID, err := p.d.Journal.Arm(&armed)
	if err != nil {
		p.d.Log.Error().Err(err).Str("issuer", route.Issuer).Msg("reversal not armed: request not sent, 91")
		entry.ResponseCode = iso8583.RCIssuerUnavailable
		return *entry, issuerReply{}, nil
	}
	x := issuerExchanges.Get().(*issuerExchange)
	defer issuerExchanges.Put(x)
	x.scratch = issuerRequest(&x.req, x.scratch, req, tok, is.Institution, p.d.Institution, entry)
	sent := p.d.Now()
	err = is.Link.ExchangeBuilt(ctx, &x.req, &x.ans)
	reply := issuerReply{answered: p.d.Now()}
	if err == nil {
		p.d.Metrics.IssuerTime(route.Issuer, reply.answered.Sub(sent))
		reply.rc, reply.authCode, reply.balance = issuerAnswer(req, &x.ans.Fields)
		entry.ResponseCode, entry.AuthCode = reply.rc, reply.authCode
		return *entry, reply, &journal.Change{Disarm: armID}
	}
	change := &journal.Change{Disarm: armID}
	if link.Sent(err) {
		// The issuer may have approved: its hold is reversed by the armed
		// advice, now due, whatever the terminal is told below.
		change = &journal.Change{Activate: &journal.Advice{ID: armID, Entry: armed}}
	}
	p.d.Log.Warn().Err(err).Str("issuer", route.Issuer).Str("stan", req.STAN).Bool("sent", link.Sent(err)).
		Msg("issuer did not answer")
	return p.standInOr91(ctx, req, route, is, entry, change, reply, now)
}

// issuerExchange is what one request to an issuer reuses: the Builder it
// is packed with, the buffer for its DE48, and the Answer its response is
// read into. The values read from the Answer are copied out (issuerAnswer)
// before it goes back to the pool.
type issuerExchange struct {
	req     iso8583.Builder
	scratch []byte
	ans     link.Answer
}

var issuerExchanges = sync.Pool{New: func() any { return new(issuerExchange) }}

// issuerAnswer maps the issuer's response to the terminal's rc, auth code
// and balance. The values are read as moov read them (text fields less
// their padding) and copied out of resp.
func issuerAnswer(req Request, resp *iso8583.Fields) (rc, authCode, balance string) {
	rc, authCode = IssuerAnswer(req.ProcessingCode, issuerCode(resp.Bytes(iso8583.FieldResponseCode)),
		copyField(resp, iso8583.FieldAuthCode))
	if rc == iso8583.RCApproved && req.ProcessingCode == iso8583.ProcBalanceInquiry {
		balance = copyField(resp, iso8583.FieldAdditionalAmounts)
	}
	return rc, authCode, balance
}

// issuerCode is DE39 as one of the codes IssuerAnswer passes on, without
// a copy (the map holds each code as its own value); any other code reads
// as issuerCodeUnknown, which IssuerAnswer turns into 05 as it would the
// code itself.
func issuerCode(v []byte) string {
	if code, known := knownIssuerCodes[string(v)]; known {
		return code
	}
	return issuerCodeUnknown
}

// issuerCodeUnknown stands for any DE39 outside knownIssuerCodes.
const issuerCodeUnknown = "??"

func copyField(f *iso8583.Fields, id int) string {
	if v := f.Bytes(id); len(v) > 0 {
		return string(v)
	}
	return ""
}

// standInOr91 approves on the issuer's behalf when its rules and the
// token's usage today allow, queueing an 0220 advice with its own STAN and
// transmission time (the issuer must not take it for the unanswered
// request); otherwise the answer is 91.
func (p *Pipeline) standInOr91(ctx context.Context, req Request, route bintable.Entry, is Issuer, entry *journal.Entry, change *journal.Change, reply issuerReply, now time.Time) (journal.Entry, issuerReply, *journal.Change) {
	entry.ResponseCode = iso8583.RCIssuerUnavailable
	rules, ok := p.d.StandIn[route.Issuer]
	if !ok || !rules.Enabled || ctx.Err() != nil {
		// A request out of time (a cluster node past its claim's
		// DecideBy) is not stood in for either.
		return *entry, reply, change
	}
	day := p.d.Journal.BusinessDayOf(now)
	held, usage, err := p.takeStandIn(ctx, rules, req, route, day)
	if err != nil || held == nil {
		if errors.Is(err, ErrClusterUnavailable) {
			p.d.Metrics.ClusterUnavailable("stand_in")
		}
		if err != nil {
			p.d.Log.Error().Err(err).Str("issuer", route.Issuer).Str("stan", req.STAN).Msg("stand-in usage unavailable: 91")
		}
		return *entry, reply, change
	}
	entry.StandIn, entry.ResponseCode = true, iso8583.RCApproved
	entry.IssuerSTAN = is.Link.NextSTAN()
	entry.IssuerTransmissionTime = p.d.Now().UTC().Format("0102150405")
	entry.AuthCode = standInAuthCode(entry.IssuerSTAN)
	change.Enqueue = append(change.Enqueue, journal.Advice{Kind: journal.AdviceStandIn, Entry: *entry})
	change.Usage = usage
	// Released once the entry's append returned, so the next tap of the
	// token reads this one's usage.
	reply.release = held.Release
	reply.rc, reply.authCode = entry.ResponseCode, entry.AuthCode
	p.d.Log.Info().Str("issuer", route.Issuer).Str("stan", req.STAN).Msg("stand-in approval")
	return *entry, reply, change
}

// takeStandIn takes one stand-in approval of req from the token's usage of
// day, when the rules allow it: held nil means no stand-in (over a cap,
// or the usage kept moving on other nodes). usage is the record to journal
// with the approval (nil when the store keeps it). The caller releases
// held once the outcome's append returned.
func (p *Pipeline) takeStandIn(ctx context.Context, rules StandInRules, req Request, route bintable.Entry, day string) (held StandInHold, usage *journal.Usage, err error) {
	held, err = p.standIns.Hold(ctx, day, req.Token.Clear())
	if err != nil {
		return nil, nil, err
	}
	for try := 1; ; try++ {
		if !StandInAllowed(rules, req, route.Product, held.Used()) {
			held.Release(false)
			return nil, nil, nil
		}
		usage, taken, err := held.Take(ctx, int64(req.Amount))
		if err != nil {
			held.Release(false)
			return nil, nil, err
		}
		if taken {
			return held, usage, nil
		}
		if try >= takeTriesMax {
			held.Release(false)
			return nil, nil, nil
		}
	}
}
