package authorize

import (
	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// tokenRequestorFallback is used when a token record carries no requestor.
const tokenRequestorFallback = "00000000000"

// Answer is the switch's answer to a terminal's 0100 or 0200, as typed
// values: the request's matching fields echoed and the outcome added. DE2
// is the token the terminal sent: the card number never leaves towards a
// terminal. It is packed by the hot path with an iso8583.Builder (Build),
// or turned into a moov message (Message): both write the same fields
// through fill, and the two codecs pack the same fields to the same bytes
// (iso8583's FuzzFastAgreesWithMoov).
type Answer struct {
	Request  Request
	RC       string
	AuthCode string // DE38, "" when none
	Balance  string // DE54, "" when none
	// echo marks a refusal before the request was decided: the answer is
	// EchoAnswer's (every echo field the request has, DE70 included).
	echo bool
}

// EchoRequest is EchoAnswer for a request read by ParseFields: what the
// terminal gets when the request cannot be decided (a panic answered 96).
func EchoRequest(req Request, rc string) Answer {
	return Answer{Request: req, RC: rc, echo: true}
}

// answer builds the response to a terminal.
func answer(req Request, rc, authCode string) Answer {
	return Answer{Request: req, RC: rc, AuthCode: authCode}
}

// fieldSetter is what an answer is written into.
type fieldSetter interface {
	Set(id int, v string)
	SetAmount(a iso8583.Amount) // DE4
}

func (a *Answer) fill(s fieldSetter) {
	req := &a.Request
	s.Set(iso8583.FieldPAN, req.Token.Clear())
	s.Set(iso8583.FieldProcessingCode, req.ProcessingCode)
	s.SetAmount(req.Amount)
	s.Set(iso8583.FieldTransmissionTime, req.TransmissionTime)
	s.Set(iso8583.FieldSTAN, req.STAN)
	s.Set(iso8583.FieldRRN, req.RRN)
	if a.AuthCode != "" && !a.echo {
		s.Set(iso8583.FieldAuthCode, a.AuthCode)
	}
	s.Set(iso8583.FieldResponseCode, a.RC)
	s.Set(iso8583.FieldTerminalID, req.TerminalID)
	s.Set(iso8583.FieldMerchantID, req.MerchantID)
	s.Set(iso8583.FieldCurrency, req.Currency)
	if a.Balance != "" && !a.echo {
		s.Set(iso8583.FieldAdditionalAmounts, a.Balance)
	}
	if a.echo && req.networkCode != "" {
		s.Set(iso8583.FieldNetworkMgmtCode, req.networkCode)
	}
}

// Build writes the answer into b, from Reset on.
func (a *Answer) Build(b *iso8583.Builder) {
	b.Reset(iso8583.ResponseMTI(a.Request.MTI))
	a.fill(builderSetter{b})
}

// Message is the answer as a moov message.
func (a *Answer) Message() *moov.Message {
	m := iso8583.NewMessage()
	m.MTI(iso8583.ResponseMTI(a.Request.MTI))
	a.fill(moovSetter{m})
	return m
}

type moovSetter struct{ m *moov.Message }

func (s moovSetter) Set(id int, v string)       { s.m.Field(id, v) }
func (s moovSetter) SetAmount(a iso8583.Amount) { s.m.Field(iso8583.FieldAmount, a.Field()) }

type builderSetter struct{ b *iso8583.Builder }

func (s builderSetter) Set(id int, v string) { s.b.Set(id, v) }

// SetAmount writes DE4 without formatting a string. An amount is never
// negative here: ParseAmountField read it from digits.
func (s builderSetter) SetAmount(a iso8583.Amount) { s.b.SetUint(iso8583.FieldAmount, uint64(a)) }

// echoFields are copied from a request we could not fully read into its
// answer, so the terminal can match it.
var echoFields = []int{
	iso8583.FieldPAN, iso8583.FieldProcessingCode, iso8583.FieldAmount,
	iso8583.FieldTransmissionTime, iso8583.FieldSTAN, iso8583.FieldRRN,
	iso8583.FieldTerminalID, iso8583.FieldMerchantID, iso8583.FieldCurrency,
	iso8583.FieldNetworkMgmtCode,
}

// EchoAnswer answers msg with rc, echoing whatever matching fields it has
// that are valid (the one that made a request malformed is left out).
// It returns nil when msg's MTI has no response.
func EchoAnswer(msg *moov.Message, rc string) *moov.Message {
	mti, _ := msg.GetMTI()
	respMTI := iso8583.ResponseMTI(mti)
	if respMTI == "" {
		return nil
	}
	m := iso8583.NewMessage()
	m.MTI(respMTI)
	for _, id := range echoFields {
		if v := iso8583.FieldValue(msg, id); v != "" && iso8583.CheckField(id, []byte(v)) == nil {
			m.Field(id, v)
		}
	}
	m.Field(iso8583.FieldResponseCode, rc)
	return m
}

// networkManagementAnswer answers a terminal's 0800: sign-on, sign-off and
// echo are acknowledged, and so is an 0800 without DE70, which some
// terminal stacks send as their echo; any other DE70 is an invalid
// transaction.
func networkManagementAnswer(msg *moov.Message) *moov.Message {
	switch iso8583.FieldValue(msg, iso8583.FieldNetworkMgmtCode) {
	case iso8583.NetSignOn, iso8583.NetSignOff, iso8583.NetEcho, "":
		return EchoAnswer(msg, iso8583.RCApproved)
	}
	return EchoAnswer(msg, iso8583.RCInvalidTransaction)
}

// issuerRequest builds what the issuer receives into b: the real PAN and
// card expiry, the token data in DE48, the switch's own STAN and
// transmission time (from the entry, where the armed reversal has them
// too). scratch is a reused buffer for DE48 (the Builder copies it), given
// back grown. TestIssuerRequestPacksAsMoov holds the bytes to those of the
// moov message the switch sent before the fast codec.
func issuerRequest(b *iso8583.Builder, scratch []byte, req Request, tok vault.Token, issuerInstitution, switchInstitution string, e *journal.Entry) []byte {
	b.Reset(req.MTI)
	b.Set(iso8583.FieldPAN, tok.PAN.Clear())
	b.Set(iso8583.FieldProcessingCode, req.ProcessingCode)
	b.SetUint(iso8583.FieldAmount, uint64(req.Amount)) // never negative: read from digits
	b.Set(iso8583.FieldTransmissionTime, e.IssuerTransmissionTime)
	b.Set(iso8583.FieldSTAN, e.IssuerSTAN)
	setIfPresent(b, iso8583.FieldLocalTime, req.LocalTime)
	setIfPresent(b, iso8583.FieldLocalDate, req.LocalDate)
	b.Set(iso8583.FieldExpiry, tok.CardExpiry)
	b.Set(iso8583.FieldMCC, req.MCC)
	b.Set(iso8583.FieldPOSEntryMode, req.POSEntryMode)
	setIfPresent(b, iso8583.FieldPOSCondition, req.POSCondition)
	b.Set(iso8583.FieldAcquirer, req.Acquirer)
	b.Set(iso8583.FieldForwarder, switchInstitution)
	b.Set(iso8583.FieldRRN, req.RRN)
	b.Set(iso8583.FieldTerminalID, req.TerminalID)
	b.Set(iso8583.FieldMerchantID, req.MerchantID)
	setIfPresent(b, iso8583.FieldMerchantNameLocation, req.MerchantName)
	requestor := tok.RequestorID
	if requestor == "" {
		requestor = tokenRequestorFallback
	}
	td := iso8583.TokenData{Token: req.Token, RequestorID: requestor, DeviceID: tok.DeviceID}
	scratch = td.Append(scratch[:0])
	b.SetBytes(iso8583.FieldPrivateTokenData, scratch)
	b.Set(iso8583.FieldCurrency, req.Currency)
	b.Set(iso8583.FieldReceivingInstitution, issuerInstitution)
	return scratch
}

func setIfPresent(b *iso8583.Builder, id int, v string) {
	if v != "" {
		b.Set(id, v)
	}
}
