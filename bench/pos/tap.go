package pos

import (
	"crypto/sha256"
	"fmt"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/cryptogram"
)

// Terminal identifies the acceptor a request comes from.
type Terminal struct {
	TerminalID   string // DE41, 8 characters
	MerchantID   string // DE42, up to 15
	MerchantName string // DE43, up to 40
	MCC          string // DE18
	Acquirer     string // DE32, the acquiring bank's institution ID
}

// DemoTerminal is the terminal termsim uses by default: a convenience store
// acquired by ICBC.
var DemoTerminal = Terminal{
	TerminalID:   "TSIM0001",
	MerchantID:   "104110054110001",
	MerchantName: "TAPSWITCH DEMO STORE      SHANGHAI    CN",
	MCC:          "5411",
	Acquirer:     "01020000",
}

// Tap is one contactless transaction as a terminal builds it.
type Tap struct {
	Terminal       Terminal
	MTI            string // 0200 unless set
	ProcessingCode string
	Token          string
	TokenExpiry    string // YYMM
	Amount         iso8583.Amount
	STAN           string // 6 digits
	Time           time.Time
	POSEntryMode   string // 072 (contactless chip) unless set

	// The phone's part (docs/cryptogram.md). With Key set the tap carries
	// DE55: an ARQC under Key for counter ATC, which the phone advances
	// before every tap (wallet.Card.NextATC). Without it, no DE55.
	Key           []byte
	ATC           uint32
	NoFingerprint bool    // CVM results "no CVM": the phone was not unlocked
	Unpredictable [4]byte // 9F37; zero: derived from terminal, STAN and time
	Date          string  // 9A YYMMDD; empty: Time's date in Shanghai

	// Original is what a refund gives money back on (DE90); zero: none.
	Original Original
}

// Original names an earlier request of the same terminal in DE90.
type Original struct {
	MTI              string // 0200 unless set
	STAN             string
	TransmissionTime string // DE7, MMDDhhmmss UTC
}

// OriginalOf is the Original naming msg, a request of this terminal.
func OriginalOf(msg *moov.Message) Original {
	mti, _ := msg.GetMTI()
	return Original{MTI: mti, STAN: iso8583.FieldValue(msg, iso8583.FieldSTAN),
		TransmissionTime: iso8583.FieldValue(msg, iso8583.FieldTransmissionTime)}
}

// DE90 is the original data elements field naming o, from a terminal of
// acquirer: MTI, STAN, DE7, the acquirer zero-padded to 11 digits and no
// forwarder.
func (o Original) DE90(acquirer string) string {
	mti := o.MTI
	if mti == "" {
		mti = iso8583.MTIFinancialRequest
	}
	return fmt.Sprintf("%s%s%s%011s%011d", mti, o.STAN, o.TransmissionTime, acquirer, 0)
}

// Message builds the 0100/0200 of the wire contract as a moov message.
func (t Tap) Message() *moov.Message {
	m := iso8583.NewMessage()
	m.MTI(t.mti())
	t.setFields(moovFields{m})
	return m
}

// Build builds the same message as Message into b, for the fast codec: the
// bench harness packs its requests this way (TestBuildPacksAsMessage holds
// the two to the same bytes).
func (t Tap) Build(b *iso8583.Builder) {
	b.Reset(t.mti())
	t.setFields(b)
}

func (t Tap) mti() string {
	if t.MTI == "" {
		return iso8583.MTIFinancialRequest
	}
	return t.MTI
}

// fieldSetter is where a Tap writes its fields: a Builder, or a moov
// message through moovFields.
type fieldSetter interface{ Set(id int, v string) }

type moovFields struct{ m *moov.Message }

func (f moovFields) Set(id int, v string) { f.m.Field(id, v) }

// setFields is the one place that decides a tap's fields.
func (t Tap) setFields(m fieldSetter) {
	entry := t.POSEntryMode
	if entry == "" {
		entry = "072"
	}
	utc := t.Time.UTC()
	local := t.Time.In(shanghai)
	m.Set(iso8583.FieldPAN, t.Token)
	m.Set(iso8583.FieldProcessingCode, t.ProcessingCode)
	m.Set(iso8583.FieldAmount, t.Amount.Field())
	m.Set(iso8583.FieldTransmissionTime, utc.Format("0102150405"))
	m.Set(iso8583.FieldSTAN, t.STAN)
	m.Set(iso8583.FieldLocalTime, local.Format("150405"))
	m.Set(iso8583.FieldLocalDate, local.Format("0102"))
	m.Set(iso8583.FieldExpiry, t.TokenExpiry)
	m.Set(iso8583.FieldMCC, t.Terminal.MCC)
	m.Set(iso8583.FieldPOSEntryMode, entry)
	m.Set(iso8583.FieldPOSCondition, "00")
	m.Set(iso8583.FieldAcquirer, t.Terminal.Acquirer)
	m.Set(iso8583.FieldRRN, RRN(t.Time, t.STAN))
	m.Set(iso8583.FieldTerminalID, t.Terminal.TerminalID)
	m.Set(iso8583.FieldMerchantID, t.Terminal.MerchantID)
	m.Set(iso8583.FieldMerchantNameLocation, t.Terminal.MerchantName)
	m.Set(iso8583.FieldCurrency, iso8583.CurrencyCNY)
	if icc := t.ICC(); icc != nil {
		m.Set(iso8583.FieldICC, string(icc))
	}
	if t.Original.STAN != "" {
		m.Set(iso8583.FieldOriginalData, t.Original.DE90(t.Terminal.Acquirer))
	}
}

// WithCard returns t as the phone holding card makes it: card's token and
// expiry, its key, and the card's next counter (wallet.Card.NextATC, so
// card must come from wallet.Load). A card without a usable key makes a tap
// without DE55, which the switch answers 30.
func (t Tap) WithCard(card wallet.Card) Tap {
	t.Token, t.TokenExpiry = card.Token, card.TokenExpiry
	key, err := card.TokenKey()
	if err != nil || key == nil {
		t.Key, t.ATC = nil, 0
		return t
	}
	t.Key, t.ATC = key, card.NextATC()
	return t
}

// ICC is the tap's DE55 as the phone and the terminal make it, the ARQC
// over the terminal's ID among the rest: nil without a key, or when the
// tap's fields cannot be signed (an amount DE4 cannot carry, a processing
// code shorter than 2, no terminal ID), which the switch answers 30.
func (t Tap) ICC() []byte {
	if len(t.Key) == 0 || len(t.ProcessingCode) < 2 {
		return nil
	}
	cvm := cryptogram.CVMDeviceVerified
	if t.NoFingerprint {
		cvm = cryptogram.CVMNone
	}
	ct := cryptogram.Tap{
		Amount: int64(t.Amount), Currency: iso8583.CurrencyCNY, Date: t.Date, Type: t.ProcessingCode[:2],
		Terminal: t.Terminal.TerminalID, Unpredictable: t.Unpredictable, Counter: t.ATC, CVM: cvm,
	}
	if ct.Date == "" {
		ct.Date = t.Time.In(shanghai).Format("060102")
	}
	if ct.Unpredictable == [4]byte{} {
		ct.Unpredictable = t.unpredictable()
	}
	arqc, err := cryptogram.ARQC(t.Key, ct)
	if err != nil {
		return nil
	}
	icc, err := cryptogram.EMV{ARQC: arqc, ATC: ct.ATC(), Unpredictable: ct.Unpredictable, CVM: cvm,
		Date: ct.Date}.AppendDE55(nil)
	if err != nil {
		return nil
	}
	return icc
}

// unpredictable stands in for the terminal's random 9F37: derived from
// what makes the tap unique, so Message stays a function of the Tap.
func (t Tap) unpredictable() [4]byte {
	sum := sha256.Sum256(fmt.Appendf(nil, "tapswitch pos 9F37|%s|%s|%d", t.Terminal.TerminalID, t.STAN, t.Time.UnixNano()))
	return [4]byte(sum[:4])
}

// RRN is the retrieval reference number a terminal prints on the receipt:
// the last digit of the year, the day of the year, the hour, and the STAN.
func RRN(t time.Time, stan string) string {
	u := t.UTC()
	return fmt.Sprintf("%d%03d%02d%s", u.Year()%10, u.YearDay(), u.Hour(), stan)
}

// Echo builds an 0800 echo test from terminal t. It carries t's DE32, so
// the acquirer's host (Client.Do) knows whose key MACs it.
func Echo(t Terminal, stan string, now time.Time) *moov.Message {
	m := iso8583.NewMessage()
	m.MTI(iso8583.MTINetworkMgmtRequest)
	m.Field(iso8583.FieldTransmissionTime, now.UTC().Format("0102150405"))
	m.Field(iso8583.FieldSTAN, stan)
	m.Field(iso8583.FieldAcquirer, t.Acquirer)
	m.Field(iso8583.FieldTerminalID, t.TerminalID)
	m.Field(iso8583.FieldNetworkMgmtCode, iso8583.NetEcho)
	return m
}
