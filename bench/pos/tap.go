package pos

import (
	"fmt"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/iso8583"
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
}

// Message builds the 0100/0200 of the wire contract.
func (t Tap) Message() *moov.Message {
	mti := t.MTI
	if mti == "" {
		mti = iso8583.MTIFinancialRequest
	}
	entry := t.POSEntryMode
	if entry == "" {
		entry = "072"
	}
	utc := t.Time.UTC()
	local := t.Time.In(shanghai)
	m := iso8583.NewMessage()
	m.MTI(mti)
	m.Field(iso8583.FieldPAN, t.Token)
	m.Field(iso8583.FieldProcessingCode, t.ProcessingCode)
	m.Field(iso8583.FieldAmount, t.Amount.Field())
	m.Field(iso8583.FieldTransmissionTime, utc.Format("0102150405"))
	m.Field(iso8583.FieldSTAN, t.STAN)
	m.Field(iso8583.FieldLocalTime, local.Format("150405"))
	m.Field(iso8583.FieldLocalDate, local.Format("0102"))
	m.Field(iso8583.FieldExpiry, t.TokenExpiry)
	m.Field(iso8583.FieldMCC, t.Terminal.MCC)
	m.Field(iso8583.FieldPOSEntryMode, entry)
	m.Field(iso8583.FieldPOSCondition, "00")
	m.Field(iso8583.FieldAcquirer, t.Terminal.Acquirer)
	m.Field(iso8583.FieldRRN, RRN(t.Time, t.STAN))
	m.Field(iso8583.FieldTerminalID, t.Terminal.TerminalID)
	m.Field(iso8583.FieldMerchantID, t.Terminal.MerchantID)
	m.Field(iso8583.FieldMerchantNameLocation, t.Terminal.MerchantName)
	m.Field(iso8583.FieldCurrency, iso8583.CurrencyCNY)
	return m
}

// RRN is the retrieval reference number a terminal prints on the receipt:
// the last digit of the year, the day of the year, the hour, and the STAN.
func RRN(t time.Time, stan string) string {
	u := t.UTC()
	return fmt.Sprintf("%d%03d%02d%s", u.Year()%10, u.YearDay(), u.Hour(), stan)
}

// Echo builds an 0800 echo test.
func Echo(terminalID, stan string, now time.Time) *moov.Message {
	m := iso8583.NewMessage()
	m.MTI(iso8583.MTINetworkMgmtRequest)
	m.Field(iso8583.FieldTransmissionTime, now.UTC().Format("0102150405"))
	m.Field(iso8583.FieldSTAN, stan)
	m.Field(iso8583.FieldTerminalID, terminalID)
	m.Field(iso8583.FieldNetworkMgmtCode, iso8583.NetEcho)
	return m
}
