package authorize

import (
	"testing"

	"github.com/tapswitch/tapswitch/iso8583"
)

// An 0800 is acknowledged for the codes of docs/wire.md section 8 and
// without DE70 (an echo, as some terminal stacks send it); any other code
// is an invalid transaction.
func TestNetworkManagementAnswer(t *testing.T) {
	for _, tt := range []struct {
		code, rc string
	}{
		{iso8583.NetSignOn, iso8583.RCApproved},
		{iso8583.NetSignOff, iso8583.RCApproved},
		{iso8583.NetEcho, iso8583.RCApproved},
		{"", iso8583.RCApproved},
		{"999", iso8583.RCInvalidTransaction},
	} {
		msg := iso8583.NewMessage()
		msg.MTI(iso8583.MTINetworkMgmtRequest)
		msg.Field(iso8583.FieldSTAN, "000001")
		if tt.code != "" {
			msg.Field(iso8583.FieldNetworkMgmtCode, tt.code)
		}
		resp := networkManagementAnswer(msg)
		if mti, _ := resp.GetMTI(); mti != "0810" {
			t.Errorf("DE70 %q: answered %s, want 0810", tt.code, mti)
		}
		if rc := iso8583.FieldValue(resp, iso8583.FieldResponseCode); rc != tt.rc {
			t.Errorf("DE70 %q: rc %s, want %s", tt.code, rc, tt.rc)
		}
		if got := iso8583.FieldValue(resp, iso8583.FieldNetworkMgmtCode); got != tt.code {
			t.Errorf("DE70 %q echoed as %q", tt.code, got)
		}
	}
}
