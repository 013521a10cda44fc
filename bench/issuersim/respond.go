package issuersim

import (
	"errors"
	"strings"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/iso8583"
)

// respond decides the request against the book, posting what the decision
// posts, and packs the answer. A request drawn faultError is answered 96
// without a decision. Every other fault happens to the answer afterwards
// (conn.handle), so a dropped, cut or garbled approval is still posted: the
// issuer approved and the switch never heard, which is the case the switch
// must reverse. ok is false only when our own answer does not pack.
func (s *Issuer) respond(req request, p plan) (packed []byte, ok bool) {
	var d decision
	if p.fault == faultError {
		d = answer(iso8583.RCSystemError)
	} else {
		s.mu.Lock()
		d = decide(s.book, req, s.now())
		s.book.apply(d)
		s.mu.Unlock()
	}
	packed, err := iso8583.Pack(buildResponse(req, d))
	if err == nil && p.wideBitmap {
		packed, err = iso8583.WithZeroSecondaryBitmap(packed)
	}
	if err == nil && len(packed) > frameBytesMax {
		err = errResponseTooLarge
	}
	if err != nil {
		// Our own response failing to pack is a bug; the switch sees a
		// timeout, the log says why.
		s.log.Error().Err(err).Str("mti", req.MTI).Str("stan", req.STAN).Msg("response does not pack, dropped")
		return nil, false
	}
	s.logRequest(req, d.rc, p, req.invalid)
	return packed, true
}

var errResponseTooLarge = errors.New("response larger than a frame")

// logRequest logs one line per request: debug, or trace for network
// management (sign-on, echo), the links' keep-alive chatter.
func (s *Issuer) logRequest(req request, rc string, p plan, note string) {
	ev := s.log.Debug()
	if strings.HasPrefix(req.MTI, "08") {
		ev = s.log.Trace()
	}
	if ev == nil {
		return
	}
	ev = ev.Str("mti", req.MTI).Str("pc", req.ProcessingCode).Stringer("pan", req.PAN).
		Str("stan", req.STAN).Int64("amount", int64(req.Amount)).Dur("latency", p.delay)
	if p.fault != faultNone {
		ev = ev.Stringer("fault", p.fault)
	}
	if rc != "" {
		ev = ev.Str("rc", rc)
	}
	if note != "" {
		ev = ev.Str("note", note)
	}
	ev.Msg("request")
}

// buildResponse echoes the request's fields and adds the decision.
func buildResponse(req request, d decision) *moov.Message {
	msg := iso8583.NewMessage()
	msg.MTI(iso8583.ResponseMTI(req.MTI))
	// Field only fails for a field outside the spec or a value that cannot
	// be set; these are the request's own values or ours, and Pack would
	// report anything wrong.
	for _, f := range req.echo {
		_ = msg.Field(f.id, f.value)
	}
	_ = msg.Field(iso8583.FieldResponseCode, d.rc)
	if d.rc == iso8583.RCApproved && d.authCode != "" {
		_ = msg.Field(iso8583.FieldAuthCode, d.authCode)
	}
	if d.balance != "" {
		_ = msg.Field(iso8583.FieldAdditionalAmounts, d.balance)
	}
	if d.rc == iso8583.RCApproved && d.phone != "" {
		_ = msg.Field(iso8583.FieldPrivateTokenData, iso8583.VerificationAnswer{Phone: d.phone}.Encode())
	}
	return msg
}
