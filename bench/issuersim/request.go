package issuersim

import (
	"fmt"
	"strings"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/iso8583"
)

// request is what the issuer reads from one message. It is extracted in the
// reader goroutine, so the handler never touches the moov message, whose
// binary fields may still point into the reader's reused frame buffer.
type request struct {
	MTI              string
	ProcessingCode   string
	PAN              iso8583.PAN
	Expiry           string
	Amount           iso8583.Amount
	STAN             string
	TransmissionTime string
	RRN              string
	TerminalID       string
	TokenData        iso8583.TokenData
	CVN2             iso8583.CVN2 // DE48 tag 04: only an account verification carries it
	NetworkCode      string       // DE70
	Original         originalData
	// invalid says why the message breaks the contract; "" when it does not.
	invalid string
	echo    []echoField
}

// originalData is DE90, the reversal's pointer to its original.
type originalData struct {
	MTI, STAN, TransmissionTime, Acquirer, Forwarder string
}

type echoField struct {
	id    int
	value string
}

// fixedNumeric holds the length of every fixed numeric field the issuer
// reads. moov strips their zero padding on unpack; we put it back so that
// "000000" stays a purchase and a STAN keeps its six digits.
var fixedNumeric = map[int]int{
	iso8583.FieldProcessingCode:   6,
	iso8583.FieldAmount:           12,
	iso8583.FieldTransmissionTime: 10,
	iso8583.FieldSTAN:             6,
	iso8583.FieldExpiry:           4,
	iso8583.FieldCurrency:         3,
	iso8583.FieldNetworkMgmtCode:  3,
	iso8583.FieldOriginalData:     42,
}

// Mandatory fields and echoed fields by message class.
var (
	financialMandatory = []int{2, 3, 7, 11, 14, 37, 41, 49}
	reversalMandatory  = []int{2, 3, 4, 7, 11, 90}
	networkMandatory   = []int{7, 11, 70}
	financialEcho      = []int{2, 3, 4, 7, 11, 37, 41, 49}
	reversalEcho       = []int{2, 3, 4, 7, 11, 37, 41, 49, 90}
	networkEcho        = []int{7, 11, 70}
)

// parseRequest reads a message that iso8583.Unpack accepted. Contract
// violations land in request.invalid, to be answered 30.
func parseRequest(msg *moov.Message) request {
	var req request
	req.MTI, _ = msg.GetMTI()
	var mandatory, echo []int
	switch req.MTI {
	case iso8583.MTIAuthRequest, iso8583.MTIFinancialRequest, iso8583.MTIAdvice:
		mandatory, echo = financialMandatory, financialEcho
	case iso8583.MTIReversalRequest, iso8583.MTIReversalAdvice:
		mandatory, echo = reversalMandatory, reversalEcho
	case iso8583.MTINetworkMgmtRequest:
		mandatory, echo = networkMandatory, networkEcho
	default:
		req.invalid = fmt.Sprintf("MTI %s is not a request the issuer handles", req.MTI)
		return req
	}
	get := func(id int) string { return fieldString(msg, id) }
	for _, id := range echo {
		if msg.GetField(id) != nil {
			req.echo = append(req.echo, echoField{id, get(id)})
		}
	}
	for _, id := range mandatory {
		if msg.GetField(id) == nil {
			req.invalid = fmt.Sprintf("DE%d missing", id)
			return req
		}
	}
	req.invalid = req.read(msg, get)
	return req
}

// read fills the request's fields and returns why they break the contract.
func (req *request) read(msg *moov.Message, get func(int) string) string {
	req.ProcessingCode = get(iso8583.FieldProcessingCode)
	req.PAN = iso8583.PAN(get(iso8583.FieldPAN))
	req.Expiry = get(iso8583.FieldExpiry)
	req.STAN = get(iso8583.FieldSTAN)
	req.TransmissionTime = get(iso8583.FieldTransmissionTime)
	req.RRN = get(iso8583.FieldRRN)
	req.TerminalID = get(iso8583.FieldTerminalID)
	req.NetworkCode = get(iso8583.FieldNetworkMgmtCode)
	if msg.GetField(iso8583.FieldAmount) != nil {
		amount, err := iso8583.ParseAmountField(get(iso8583.FieldAmount))
		if err != nil {
			return err.Error()
		}
		req.Amount = amount
	} else if req.MTI != iso8583.MTINetworkMgmtRequest && req.ProcessingCode != iso8583.ProcBalanceInquiry {
		return "DE4 missing"
	}
	if msg.GetField(iso8583.FieldCurrency) != nil && get(iso8583.FieldCurrency) != iso8583.CurrencyCNY {
		return fmt.Sprintf("DE49 currency %s is not %s", get(iso8583.FieldCurrency), iso8583.CurrencyCNY)
	}
	if msg.GetField(iso8583.FieldExpiry) != nil && !validYYMM(req.Expiry) {
		return fmt.Sprintf("DE14 %q is not YYMM", req.Expiry)
	}
	if msg.GetField(iso8583.FieldPrivateTokenData) != nil {
		td, err := iso8583.ParseTokenData(get(iso8583.FieldPrivateTokenData))
		if err != nil {
			return err.Error()
		}
		req.TokenData = td
		av, err := iso8583.ParseAccountVerification(get(iso8583.FieldPrivateTokenData))
		if err != nil {
			return err.Error()
		}
		req.CVN2 = av.CVN2
	}
	if msg.GetField(iso8583.FieldOriginalData) != nil {
		d := get(iso8583.FieldOriginalData)
		req.Original = originalData{MTI: d[0:4], STAN: d[4:10], TransmissionTime: d[10:20], Acquirer: d[20:31], Forwarder: d[31:42]}
	}
	return ""
}

// fieldString returns a field's value with the zero padding of fixed numeric
// fields restored, "" when absent.
func fieldString(msg *moov.Message, id int) string {
	s, err := msg.GetString(id)
	if err != nil {
		return ""
	}
	if n, ok := fixedNumeric[id]; ok && len(s) < n {
		s = strings.Repeat("0", n-len(s)) + s
	}
	return s
}

func validYYMM(s string) bool {
	return len(s) == 4 && s[2:] >= "01" && s[2:] <= "12"
}
