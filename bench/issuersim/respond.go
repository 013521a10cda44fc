package issuersim

import (
	"errors"
	"strings"
	"sync"

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
	packed, err := packResponse(req, d)
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
	note := req.invalid
	if note == "" {
		note = d.note
	}
	s.logRequest(req, d.rc, p, note)
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

// builders are reused across answers: a Builder keeps its value store.
var builders = sync.Pool{New: func() any { return new(iso8583.Builder) }}

// responseBytesTypical sizes an answer's buffer so that it is packed in one
// allocation: the answer is handed to the writer and outlives the Builder.
const responseBytesTypical = 256

// packResponse echoes the request's fields, adds the decision and packs
// the answer into a buffer of its own.
func packResponse(req request, d decision) ([]byte, error) {
	b := builders.Get().(*iso8583.Builder)
	defer builders.Put(b)
	buildResponse(b, req, d)
	return b.Append(make([]byte, 0, responseBytesTypical))
}

// buildResponse echoes the request's fields and adds the decision. A value
// that cannot be set (the request's own or ours) is reported by Append.
func buildResponse(b *iso8583.Builder, req request, d decision) {
	b.Reset(iso8583.ResponseMTI(req.MTI))
	for _, f := range req.echo[:req.echoN] {
		b.Set(f.id, f.value)
	}
	b.Set(iso8583.FieldResponseCode, d.rc)
	if d.rc == iso8583.RCApproved && d.authCode != "" {
		b.Set(iso8583.FieldAuthCode, d.authCode)
	}
	if d.balance != "" {
		b.Set(iso8583.FieldAdditionalAmounts, d.balance)
	}
	if d.rc == iso8583.RCApproved && d.phone != "" {
		b.Set(iso8583.FieldPrivateTokenData, iso8583.VerificationAnswer{Phone: d.phone}.Encode())
	}
	if d.rc == iso8583.RCApproved && d.purseData != "" {
		b.Set(iso8583.FieldPrivateTokenData, d.purseData)
	}
}
