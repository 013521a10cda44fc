package issuersim

import (
	"fmt"

	"github.com/tapswitch/tapswitch/iso8583"
)

// request is what the issuer reads from one message. It is extracted in the
// reader goroutine from the parsed frame (iso8583.Fields), whose values
// point into the reader's reused buffer: the request's strings are slices
// of one copy of the frame, so the handler owns them.
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
	// Purse is DE48 of a load or opening (isLoad): tag 40, the purse's
	// signed request, on a load only.
	Purse    iso8583.PurseLoadData
	Original originalData
	// invalid says why the message breaks the contract; "" when it does not.
	invalid string
	echo    [echoFieldsMax]echoField
	echoN   int
}

// echoFieldsMax is the longest list of echoed fields (reversalEcho).
const echoFieldsMax = 9

// originalData is DE90, the reversal's pointer to its original.
type originalData struct {
	MTI, STAN, TransmissionTime, Acquirer, Forwarder string
}

type echoField struct {
	id    int
	value string
}

// Mandatory fields and echoed fields by message class.
var (
	financialMandatory = []int{2, 3, 7, 11, 14, 37, 41, 49}
	loadMandatory      = []int{2, 3, 4, 7, 11, 32, 33, 37, 41, 49, 100}
	reversalMandatory  = []int{2, 3, 4, 7, 11, 90}
	networkMandatory   = []int{7, 11, 70}
	financialEcho      = []int{2, 3, 4, 7, 11, 37, 41, 49}
	reversalEcho       = []int{2, 3, 4, 7, 11, 37, 41, 49, 90}
	networkEcho        = []int{7, 11, 70}
)

// frameView reads a parsed frame's fields as strings, every one a slice of
// a single copy of the payload.
type frameView struct {
	f *iso8583.Fields
	s string
}

func (v frameView) has(id int) bool { return v.f.Has(id) }

func (v frameView) get(id int) string {
	start, end, ok := v.f.Span(id)
	if !ok {
		return ""
	}
	return v.s[start:end]
}

// parseRequest reads a message that Fields.Parse accepted. Contract
// violations land in request.invalid, to be answered 30.
func parseRequest(f *iso8583.Fields) request {
	var req request
	req.MTI = f.MTI()
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
	v := frameView{f: f, s: string(f.Payload())}
	if req.MTI == iso8583.MTIFinancialRequest {
		if pc := v.get(iso8583.FieldProcessingCode); pc == iso8583.ProcPurseLoad || pc == iso8583.ProcPurseOpen {
			mandatory = loadMandatory
		}
	}
	for _, id := range echo {
		if v.has(id) {
			req.echo[req.echoN] = echoField{id, v.get(id)}
			req.echoN++
		}
	}
	for _, id := range mandatory {
		if !v.has(id) {
			req.invalid = fmt.Sprintf("DE%d missing", id)
			return req
		}
	}
	req.invalid = req.read(v)
	return req
}

// read fills the request's fields and returns why they break the contract.
func (req *request) read(v frameView) string {
	get := v.get
	req.ProcessingCode = get(iso8583.FieldProcessingCode)
	req.PAN = iso8583.PAN(get(iso8583.FieldPAN))
	req.Expiry = get(iso8583.FieldExpiry)
	req.STAN = get(iso8583.FieldSTAN)
	req.TransmissionTime = get(iso8583.FieldTransmissionTime)
	req.RRN = get(iso8583.FieldRRN)
	req.TerminalID = get(iso8583.FieldTerminalID)
	req.NetworkCode = get(iso8583.FieldNetworkMgmtCode)
	if v.has(iso8583.FieldAmount) {
		amount, err := iso8583.ParseAmountField(get(iso8583.FieldAmount))
		if err != nil {
			return err.Error()
		}
		req.Amount = amount
	} else if req.MTI != iso8583.MTINetworkMgmtRequest && req.ProcessingCode != iso8583.ProcBalanceInquiry {
		return "DE4 missing"
	}
	if v.has(iso8583.FieldCurrency) && get(iso8583.FieldCurrency) != iso8583.CurrencyCNY {
		return fmt.Sprintf("DE49 currency %s is not %s", get(iso8583.FieldCurrency), iso8583.CurrencyCNY)
	}
	if v.has(iso8583.FieldExpiry) && !validYYMM(req.Expiry) {
		return fmt.Sprintf("DE14 %q is not YYMM", req.Expiry)
	}
	if v.has(iso8583.FieldPrivateTokenData) {
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
	if isLoad(*req) {
		if why := req.readPurse(v); why != "" {
			return why
		}
	}
	if v.has(iso8583.FieldOriginalData) {
		d := get(iso8583.FieldOriginalData)
		req.Original = originalData{MTI: d[0:4], STAN: d[4:10], TransmissionTime: d[10:20], Acquirer: d[20:31], Forwarder: d[31:42]}
	}
	return ""
}

func validYYMM(s string) bool {
	return len(s) == 4 && s[2:] >= "01" && s[2:] <= "12"
}

// readPurse reads DE48 of a load or opening: tag 40 on a load and only
// there, with a sequence above 0 (a purse's first load is 1), and neither
// of the answer's tags 41 and 42.
func (req *request) readPurse(v frameView) string {
	d, err := iso8583.ParsePurseLoadData(v.get(iso8583.FieldPrivateTokenData))
	switch {
	case err != nil:
		return err.Error()
	case d.Grant != nil || d.Key != nil:
		return "DE48 tag 41 or 42 in a request"
	case req.ProcessingCode == iso8583.ProcPurseLoad && d.Request == nil:
		return "DE48 tag 40 missing on a load"
	case req.ProcessingCode == iso8583.ProcPurseOpen && d.Request != nil:
		return "DE48 tag 40 on an opening"
	case d.Request != nil && d.Request.Sequence == 0:
		return "DE48 tag 40 sequence 0"
	}
	req.Purse = d
	return ""
}
