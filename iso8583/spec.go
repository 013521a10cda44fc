package iso8583

import (
	moov "github.com/moov-io/iso8583"
	"github.com/moov-io/iso8583/encoding"
	"github.com/moov-io/iso8583/field"
	"github.com/moov-io/iso8583/padding"
	"github.com/moov-io/iso8583/prefix"
)

// Data element numbers used by the network. The table in docs/wire.md says
// who sends each one and what it means.
const (
	FieldMTI                  = 0
	FieldBitmap               = 1
	FieldPAN                  = 2
	FieldProcessingCode       = 3
	FieldAmount               = 4
	FieldTransmissionTime     = 7
	FieldSTAN                 = 11
	FieldLocalTime            = 12
	FieldLocalDate            = 13
	FieldExpiry               = 14
	FieldMCC                  = 18
	FieldPOSEntryMode         = 22
	FieldPOSCondition         = 25
	FieldAcquirer             = 32
	FieldForwarder            = 33
	FieldRRN                  = 37
	FieldAuthCode             = 38
	FieldResponseCode         = 39
	FieldTerminalID           = 41
	FieldMerchantID           = 42
	FieldMerchantNameLocation = 43
	FieldPrivateTokenData     = 48
	FieldCurrency             = 49
	FieldPINBlock             = 52
	FieldAdditionalAmounts    = 54
	FieldICC                  = 55
	FieldMAC                  = 64
	FieldNetworkMgmtCode      = 70
	FieldOriginalData         = 90
	FieldReceivingInstitution = 100
	FieldMAC2                 = 128
)

// kind says how a field's content is checked after unpacking: the moov
// spec only knows ASCII and binary, the network also wants digits where the
// standard says numeric.
type kind int

const (
	kindNumeric kind = iota // digits only
	kindText                // printable ASCII
	kindBinary              // raw bytes
)

// fieldDef is one data element of the network's spec.
type fieldDef struct {
	name   string
	kind   kind
	length int // fixed length, or the maximum for variable fields
	digits int // length-prefix digits: 0 fixed, 2 LLVAR, 3 LLLVAR
}

// fieldDefs is the single source of the wire layout. The moov spec below and
// the documentation table are both derived from it.
var fieldDefs = map[int]fieldDef{
	FieldPAN:                  {"Primary account number (token or PAN)", kindNumeric, 19, 2},
	FieldProcessingCode:       {"Processing code", kindNumeric, 6, 0},
	FieldAmount:               {"Amount, transaction (minor units)", kindNumeric, 12, 0},
	FieldTransmissionTime:     {"Transmission date and time MMDDhhmmss (UTC)", kindNumeric, 10, 0},
	FieldSTAN:                 {"System trace audit number", kindNumeric, 6, 0},
	FieldLocalTime:            {"Time, local transaction hhmmss", kindNumeric, 6, 0},
	FieldLocalDate:            {"Date, local transaction MMDD", kindNumeric, 4, 0},
	FieldExpiry:               {"Date, expiration YYMM", kindNumeric, 4, 0},
	FieldMCC:                  {"Merchant category code", kindNumeric, 4, 0},
	FieldPOSEntryMode:         {"POS entry mode", kindNumeric, 3, 0},
	FieldPOSCondition:         {"POS condition code", kindNumeric, 2, 0},
	FieldAcquirer:             {"Acquiring institution ID", kindNumeric, 11, 2},
	FieldForwarder:            {"Forwarding institution ID", kindNumeric, 11, 2},
	FieldRRN:                  {"Retrieval reference number", kindText, 12, 0},
	FieldAuthCode:             {"Authorization identification response", kindText, 6, 0},
	FieldResponseCode:         {"Response code", kindText, 2, 0},
	FieldTerminalID:           {"Card acceptor terminal ID", kindText, 8, 0},
	FieldMerchantID:           {"Card acceptor ID", kindText, 15, 0},
	FieldMerchantNameLocation: {"Card acceptor name/location", kindText, 40, 0},
	FieldPrivateTokenData:     {"Additional data, private: token data", kindText, 999, 3},
	FieldCurrency:             {"Currency code, transaction", kindNumeric, 3, 0},
	FieldPINBlock:             {"PIN data", kindBinary, 8, 0},
	FieldAdditionalAmounts:    {"Additional amounts", kindText, 120, 3},
	FieldICC:                  {"ICC (EMV) data, BER-TLV", kindBinary, 255, 3},
	FieldMAC:                  {"Message authentication code", kindBinary, 8, 0},
	FieldNetworkMgmtCode:      {"Network management information code", kindNumeric, 3, 0},
	FieldOriginalData:         {"Original data elements", kindNumeric, 42, 0},
	FieldReceivingInstitution: {"Receiving institution ID", kindNumeric, 11, 2},
	FieldMAC2:                 {"Message authentication code (secondary)", kindBinary, 8, 0},
}

// Spec is the network's one shared message spec. It is safe for concurrent
// use: moov copies field specs into each message.
var Spec = buildSpec()

func buildSpec() *moov.MessageSpec {
	fields := map[int]field.Field{
		FieldMTI: field.NewString(&field.Spec{
			Length: 4, Description: "Message type indicator",
			Enc: encoding.ASCII, Pref: prefix.ASCII.Fixed,
		}),
		FieldBitmap: field.NewBitmap(&field.Spec{
			Length: 8, Description: "Bitmap",
			Enc: encoding.Binary, Pref: prefix.Binary.Fixed,
		}),
	}
	for id, def := range fieldDefs {
		fields[id] = def.moovField()
	}
	return &moov.MessageSpec{Name: "tapswitch ISO 8583:1987 ASCII, binary bitmap", Fields: fields}
}

func (d fieldDef) moovField() field.Field {
	spec := &field.Spec{Length: d.length, Description: d.name}
	switch d.digits {
	case 0:
		spec.Pref = prefix.ASCII.Fixed
	default:
		spec.Pref = strictASCIILength{digits: d.digits}
	}
	switch d.kind {
	case kindBinary:
		spec.Enc = encoding.Binary
		if d.digits == 0 {
			spec.Pref = prefix.Binary.Fixed
		}
		return field.NewBinary(spec)
	case kindNumeric:
		spec.Enc = encoding.ASCII
		if d.digits == 0 {
			spec.Pad = zeroPadLeft{}
		}
		return field.NewString(spec)
	default:
		spec.Enc = encoding.ASCII
		if d.digits == 0 {
			spec.Pad = padding.Right(' ')
		}
		return field.NewString(spec)
	}
}

// NewMessage returns an empty message on the network's spec.
func NewMessage() *moov.Message {
	return moov.NewMessage(Spec)
}

// zeroPadLeft zero-pads a short numeric value when packing but keeps every
// digit when unpacking: moov's padding.Left('0') strips leading zeros, which
// turns STAN "000042" into "42", DE3 "000000" into "" and DE70 "001" into "1".
type zeroPadLeft struct{}

var leftZeros = padding.Left('0')

func (zeroPadLeft) Pad(data []byte, length int) []byte { return leftZeros.Pad(data, length) }
func (zeroPadLeft) Unpad(data []byte) []byte           { return data }
func (zeroPadLeft) Inspect() []byte                    { return []byte("0") }
