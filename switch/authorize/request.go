package authorize

import (
	"crypto/sha256"
	"fmt"
	"strconv"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// Request is a terminal's 0100 or 0200, read off the wire and checked.
type Request struct {
	MTI              string
	ProcessingCode   string
	Token            iso8583.PAN
	TokenExpiry      string // YYMM
	Amount           iso8583.Amount
	Currency         string
	TransmissionTime string // MMDDhhmmss
	STAN             string
	LocalTime        string
	LocalDate        string
	MCC              string
	POSEntryMode     string
	POSCondition     string
	Acquirer         string
	RRN              string
	TerminalID       string
	MerchantID       string
	MerchantName     string
	ICC              []byte
	// A refund names the purchase it gives money back on in DE90: that
	// purchase's MTI and its key at this terminal. Zero when absent.
	OriginalMTI string
	Original    journal.Key
	// networkCode is DE70 as sent (rare on a 0100/0200): a refusal
	// echoes it, as EchoAnswer does.
	networkCode string
}

// HasOriginal reports whether the request names an original in DE90.
func (r Request) HasOriginal() bool { return r.OriginalMTI != "" }

// originalData reads DE90 (42 digits: MTI, STAN, transmission time,
// acquirer, forwarder) into the original's MTI and its key at terminal.
func originalData(de90, terminal string) (string, journal.Key) {
	return de90[:4], journal.Key{TerminalID: terminal, STAN: de90[4:10], TransmissionTime: de90[10:20]}
}

// mandatoryFields are the data elements a terminal's 0100/0200 must carry.
// DE18, DE32 and DE37 are mandatory because settlement needs them: the fee
// depends on the MCC, the acquirer is the bank paid, the RRN ties the
// clearing record to the terminal's receipt.
var mandatoryFields = []int{
	iso8583.FieldPAN, iso8583.FieldProcessingCode, iso8583.FieldAmount,
	iso8583.FieldTransmissionTime, iso8583.FieldSTAN, iso8583.FieldExpiry,
	iso8583.FieldMCC, iso8583.FieldPOSEntryMode, iso8583.FieldAcquirer,
	iso8583.FieldRRN, iso8583.FieldTerminalID, iso8583.FieldMerchantID,
	iso8583.FieldCurrency,
}

// fieldSource is a message's fields as ParseRequest reads them: a moov
// message (off the hot path, and in tests) or a frame parsed in place.
type fieldSource interface {
	has(id int) bool
	get(id int) string // as iso8583.FieldValue reads it; "" when absent
	mti() string
	icc() []byte // a copy the request owns
}

type moovSource struct{ msg *moov.Message }

func (m moovSource) has(id int) bool   { return m.msg.GetField(id) != nil }
func (m moovSource) get(id int) string { return iso8583.FieldValue(m.msg, id) }
func (m moovSource) mti() string       { mti, _ := m.msg.GetMTI(); return mti }
func (m moovSource) icc() []byte       { b, _ := m.msg.GetBytes(iso8583.FieldICC); return b }

// fieldsSource reads a parsed frame: s is one copy of its payload, and
// every string of the request is a slice of it.
type fieldsSource struct {
	f *iso8583.Fields
	s string
}

func (v fieldsSource) has(id int) bool { return v.f.Has(id) }
func (v fieldsSource) mti() string     { return v.f.MTI() }
func (v fieldsSource) get(id int) string {
	start, end, ok := v.f.Span(id)
	if !ok {
		return ""
	}
	return v.s[start:end]
}
func (v fieldsSource) icc() []byte { return []byte(v.get(iso8583.FieldICC)) }

// ParseRequest reads a terminal's authorization or financial request. An
// error means the answer is 30 (format error).
func ParseRequest(msg *moov.Message) (Request, error) {
	return parseRequest(moovSource{msg})
}

// ParseFields reads a terminal's authorization or financial request from
// a frame the hot path's codec accepted, exactly as ParseRequest reads the
// same frame unpacked by moov. The request owns its values (one copy of
// the payload, plus DE55's bytes): f and its buffer may be reused at once.
func ParseFields(f *iso8583.Fields) (Request, error) {
	return parseRequest(fieldsSource{f: f, s: string(f.Payload())})
}

func parseRequest(src fieldSource) (Request, error) {
	for _, id := range mandatoryFields {
		if !src.has(id) {
			return Request{}, fmt.Errorf("mandatory DE%d missing", id)
		}
	}
	get := src.get
	r := Request{
		ProcessingCode:   get(iso8583.FieldProcessingCode),
		Token:            iso8583.PAN(get(iso8583.FieldPAN)),
		TokenExpiry:      get(iso8583.FieldExpiry),
		Currency:         get(iso8583.FieldCurrency),
		TransmissionTime: get(iso8583.FieldTransmissionTime),
		STAN:             get(iso8583.FieldSTAN),
		MCC:              get(iso8583.FieldMCC),
		POSEntryMode:     get(iso8583.FieldPOSEntryMode),
		Acquirer:         get(iso8583.FieldAcquirer),
		RRN:              get(iso8583.FieldRRN),
		TerminalID:       get(iso8583.FieldTerminalID),
		MerchantID:       get(iso8583.FieldMerchantID),
		MerchantName:     get(iso8583.FieldMerchantNameLocation),
		networkCode:      get(iso8583.FieldNetworkMgmtCode),
	}
	r.MTI = src.mti()
	r.LocalTime = get(iso8583.FieldLocalTime)
	r.LocalDate = get(iso8583.FieldLocalDate)
	r.POSCondition = get(iso8583.FieldPOSCondition)
	if src.has(iso8583.FieldICC) {
		r.ICC = src.icc()
	}
	amount, err := iso8583.ParseAmountField(get(iso8583.FieldAmount))
	if err != nil {
		return Request{}, err
	}
	r.Amount = amount
	if de90 := get(iso8583.FieldOriginalData); de90 != "" {
		if r.ProcessingCode != iso8583.ProcRefund {
			return Request{}, fmt.Errorf("DE90 on a request that is not a refund")
		}
		r.OriginalMTI, r.Original = originalData(de90, r.TerminalID)
		if r.Original == r.Key() {
			return Request{}, fmt.Errorf("DE90 names the refund itself")
		}
	}
	if len(r.Token) < 13 {
		return Request{}, fmt.Errorf("DE2 of %d digits is too short for a token", len(r.Token))
	}
	if r.TerminalID == "" || r.RRN == "" || r.MerchantID == "" {
		return Request{}, fmt.Errorf("DE37, DE41 and DE42 must not be blank")
	}
	return r, nil
}

// Key is the duplicate key: the same terminal, STAN and transmission time is
// the same transaction.
func (r Request) Key() journal.Key {
	return journal.Key{TerminalID: r.TerminalID, STAN: r.STAN, TransmissionTime: r.TransmissionTime}
}

// Digest fingerprints what the request asks for, so that a second request
// under the same key can be told apart from a retransmission.
//
// The digest is journaled, so its input never changes: the fields joined
// by "|" in this order, DE4 in decimal, and DE90's parts only when present
// (TestDigestInput holds it to the format it was first written with). It
// is built in a stack buffer: a request's fields fit in digestBytesTypical,
// and a longer one only costs an allocation.
func (r Request) Digest() [32]byte {
	var buf [digestBytesTypical]byte
	b := buf[:0]
	for i, s := range [...]string{r.MTI, r.ProcessingCode, r.Token.Clear(), r.TokenExpiry} {
		if i > 0 {
			b = append(b, '|')
		}
		b = append(b, s...)
	}
	b = append(b, '|')
	b = strconv.AppendInt(b, int64(r.Amount), 10)
	for _, s := range [...]string{r.Currency, r.RRN, r.MerchantID, r.MCC, r.Acquirer, r.POSEntryMode} {
		b = append(append(b, '|'), s...)
	}
	if r.HasOriginal() { // only then, so digests of requests without DE90 stay as they were
		for _, s := range [...]string{r.OriginalMTI, r.Original.STAN, r.Original.TransmissionTime} {
			b = append(append(b, '|'), s...)
		}
	}
	return sha256.Sum256(b)
}

// digestBytesTypical holds the digest input of any well-formed request
// (its fields' maximum lengths add up to about 180 bytes).
const digestBytesTypical = 256
