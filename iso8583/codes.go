package iso8583

// Message type indicators of the wire contract.
const (
	MTIAuthRequest         = "0100"
	MTIAuthResponse        = "0110"
	MTIFinancialRequest    = "0200"
	MTIFinancialResponse   = "0210"
	MTIAdvice              = "0220"
	MTIAdviceResponse      = "0230"
	MTIReversalRequest     = "0400"
	MTIReversalResponse    = "0410"
	MTIReversalAdvice      = "0420"
	MTIReversalAdviceResp  = "0430"
	MTINetworkMgmtRequest  = "0800"
	MTINetworkMgmtResponse = "0810"
)

// ResponseMTI returns the response MTI for a request MTI (0100 → 0110),
// or "" when mti is not a request of the contract. It returns the
// constants, so answering costs no allocation.
func ResponseMTI(mti string) string {
	switch mti {
	case MTIAuthRequest:
		return MTIAuthResponse
	case MTIFinancialRequest:
		return MTIFinancialResponse
	case MTIAdvice:
		return MTIAdviceResponse
	case MTIReversalRequest:
		return MTIReversalResponse
	case MTIReversalAdvice:
		return MTIReversalAdviceResp
	case MTINetworkMgmtRequest:
		return MTINetworkMgmtResponse
	}
	return ""
}

// Processing codes (DE3).
const (
	ProcPurchase     = "000000"
	ProcRefund       = "200000"
	ProcTransitTopUp = "210000"
	// ProcPurseLoad is the load of a transit purse at its operator, leg 2
	// of a top-up (docs/wire.md, docs/transit.md): 22 is "credit (card
	// load)".
	ProcPurseLoad = "220000"
	// ProcPurseOpen is the opening of a transit card at its operator with
	// its first load: 72 is "prepaid activation and load".
	ProcPurseOpen      = "720000"
	ProcBalanceInquiry = "310000"
)

// Network management information codes (DE70).
const (
	NetSignOn  = "001"
	NetSignOff = "002"
	NetEcho    = "301"
)

// Response codes (DE39).
const (
	RCApproved           = "00"
	RCInvalidMerchant    = "03"
	RCDoNotHonor         = "05"
	RCInvalidTransaction = "12"
	RCInvalidAmount      = "13"
	RCNoSuchCard         = "14"
	RCOriginalNotFound   = "25"
	RCFormatError        = "30"
	RCInsufficientFunds  = "51"
	RCExpiredCard        = "54"
	RCNotPermitted       = "57"
	RCTerminalNotAllowed = "58"
	RCSuspectedFraud     = "59"
	RCRestrictedCard     = "62"
	RCSecurityViolation  = "63"
	RCIssuerUnavailable  = "91"
	RCNoRoute            = "92"
	RCDuplicate          = "94"
	RCSystemError        = "96"
)

var responseCodeText = map[string]string{
	RCApproved:           "approved",
	RCInvalidMerchant:    "invalid merchant",
	RCDoNotHonor:         "do not honor",
	RCInvalidTransaction: "invalid transaction",
	RCInvalidAmount:      "invalid amount",
	RCNoSuchCard:         "no such card or token",
	RCOriginalNotFound:   "original not found",
	RCFormatError:        "format error",
	RCInsufficientFunds:  "insufficient funds",
	RCExpiredCard:        "expired card",
	RCNotPermitted:       "not permitted (token domain)",
	RCTerminalNotAllowed: "transaction not permitted to terminal",
	RCSuspectedFraud:     "suspected fraud",
	RCRestrictedCard:     "restricted (token suspended)",
	RCSecurityViolation:  "security violation (MAC)",
	RCIssuerUnavailable:  "issuer unavailable",
	RCNoRoute:            "no route to issuer",
	RCDuplicate:          "duplicate transmission",
	RCSystemError:        "system error",
}

// ResponseText is a short human description of a response code.
func ResponseText(rc string) string {
	if t, ok := responseCodeText[rc]; ok {
		return t
	}
	return "unknown response code"
}
