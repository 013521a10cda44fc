package iso8583

import "testing"

func TestResponseMTI(t *testing.T) {
	tests := []struct {
		req, want string
	}{
		{MTIAuthRequest, MTIAuthResponse},
		{MTIFinancialRequest, MTIFinancialResponse},
		{MTIAdvice, MTIAdviceResponse},
		{MTIReversalRequest, MTIReversalResponse},
		{MTIReversalAdvice, MTIReversalAdviceResp},
		{MTINetworkMgmtRequest, MTINetworkMgmtResponse},
		{"0110", ""}, // a response has no response
		{"0210", ""},
		{"0810", ""},
		{"0300", ""}, // not in the contract
		{"0401", ""}, // repeat: not in the contract
		{"1200", ""}, // ISO 8583:1993
		{"", ""},
		{"02", ""},
		{"02X0", ""},
	}
	for _, tt := range tests {
		if got := ResponseMTI(tt.req); got != tt.want {
			t.Errorf("ResponseMTI(%q) = %q, want %q", tt.req, got, tt.want)
		}
	}
}

func TestResponseText(t *testing.T) {
	known := []string{
		RCApproved, RCDoNotHonor, RCInvalidTransaction, RCInvalidAmount,
		RCNoSuchCard, RCOriginalNotFound, RCFormatError, RCInsufficientFunds,
		RCExpiredCard, RCNotPermitted, RCSuspectedFraud, RCRestrictedCard,
		RCIssuerUnavailable, RCNoRoute, RCDuplicate, RCSystemError,
		RCInvalidMerchant, RCTerminalNotAllowed, RCSecurityViolation,
	}
	seen := map[string]bool{}
	for _, rc := range known {
		text := ResponseText(rc)
		if text == "unknown response code" || text == "" {
			t.Errorf("ResponseText(%q) = %q", rc, text)
		}
		if len(rc) != 2 || !isDigits(rc) {
			t.Errorf("response code %q is not 2 digits", rc)
		}
		if seen[text] {
			t.Errorf("ResponseText(%q) = %q, shared with another code", rc, text)
		}
		seen[text] = true
	}
	if len(responseCodeText) != len(known) {
		t.Errorf("responseCodeText has %d codes, the test knows %d", len(responseCodeText), len(known))
	}
	for _, rc := range []string{"99", "", "0", "000"} {
		if got := ResponseText(rc); got != "unknown response code" {
			t.Errorf("ResponseText(%q) = %q, want unknown", rc, got)
		}
	}
}
