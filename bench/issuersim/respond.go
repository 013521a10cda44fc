package issuersim

import (
	"errors"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/iso8583"
)

// respond draws the request's fault, decides it against the book and packs
// the answer. ok is false when the request is dropped.
func (s *Issuer) respond(req request, delay time.Duration) (packed []byte, ok bool) {
	var d decision
	switch s.drawFault() {
	case faultDrop:
		s.logRequest(req, "", delay, "dropped by fault injection")
		return nil, false
	case faultError:
		d = answer(iso8583.RCSystemError)
	default:
		s.mu.Lock()
		d = decide(s.book, req, s.now())
		s.book.apply(d)
		s.mu.Unlock()
	}
	packed, err := iso8583.Pack(buildResponse(req, d))
	if err == nil && len(packed) > frameBytesMax {
		err = errResponseTooLarge
	}
	if err != nil {
		// Our own response failing to pack is a bug; the switch sees a
		// timeout, the log says why.
		s.log.Error().Err(err).Str("mti", req.MTI).Str("stan", req.STAN).Msg("response does not pack, dropped")
		return nil, false
	}
	s.logRequest(req, d.rc, delay, req.invalid)
	return packed, true
}

var errResponseTooLarge = errors.New("response larger than a frame")

func (s *Issuer) logRequest(req request, rc string, delay time.Duration, note string) {
	ev := s.log.Debug()
	if ev == nil {
		return
	}
	ev = ev.Str("mti", req.MTI).Str("pc", req.ProcessingCode).Stringer("pan", req.PAN).
		Str("stan", req.STAN).Int64("amount", int64(req.Amount)).Dur("latency", delay)
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
	return msg
}
