package issuersim

import (
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/world"
	"github.com/tapswitch/tapswitch/iso8583"
)

// cvn2Of is the test book's CVN2 for a card, as the world derives it.
func cvn2Of(pan string) iso8583.CVN2 { return world.Card{PAN: iso8583.PAN(pan)}.CVN2() }

// wrongCVN2 is a 3-digit CVN2 that is not pan's.
func wrongCVN2(pan string) iso8583.CVN2 {
	if cvn2Of(pan) == "000" {
		return "001"
	}
	return "000"
}

func verification(pan, expiry string, cvn2 iso8583.CVN2) request {
	r := fin(iso8583.MTIAuthRequest, iso8583.ProcPurchase, pan, 0)
	r.Expiry, r.CVN2 = expiry, cvn2
	return r
}

func TestDecideAccountVerification(t *testing.T) {
	tests := []struct {
		name string
		req  request
		rc   string
	}{
		{"right CVN2", verification(panDebit, "2812", cvn2Of(panDebit)), "00"},
		{"right CVN2, credit", verification(panCredit, "2812", cvn2Of(panCredit)), "00"},
		{"wrong CVN2", verification(panDebit, "2812", wrongCVN2(panDebit)), "05"},
		{"unknown card", verification(panUnknown, "2812", "123"), "14"},
		{"blocked card, right CVN2", verification(panBlocked, "2812", cvn2Of(panBlocked)), "05"},
		{"expired card", verification(panExpired, "2602", cvn2Of(panExpired)), "54"},
		{"wrong expiry", verification(panDebit, "2811", cvn2Of(panDebit)), "54"},
		{"0200 is not a verification", func() request {
			r := verification(panDebit, "2812", cvn2Of(panDebit))
			r.MTI = iso8583.MTIFinancialRequest
			return r
		}(), "13"},
		{"no CVN2 is a zero purchase", verification(panDebit, "2812", ""), "13"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := testBook(t)
			d := decide(b, tt.req, testNow)
			if d.rc != tt.rc {
				t.Fatalf("rc %s, want %s", d.rc, tt.rc)
			}
			if d.post != nil {
				t.Fatalf("a verification posted %+v", d.post)
			}
			if (tt.rc == "00") != (len(d.authCode) == 6) {
				t.Fatalf("auth code %q with rc %s", d.authCode, d.rc)
			}
			if want := world.PhoneFor(7, tt.req.PAN); (tt.rc == "00") != (d.phone == want) || (tt.rc != "00" && d.phone != "") {
				t.Fatalf("phone %v with rc %s; an approval names the card's phone, nothing else does", d.phone, d.rc)
			}
			b.apply(d)
			wantAccount(t, b, panDebit, 100_00, 0)
		})
	}
}

// TestServerAccountVerification sends verifications over TCP as the switch
// builds them: the CVN2 in DE48 tag 04, no token.
func TestServerAccountVerification(t *testing.T) {
	s, addr := startIssuer(t, Faults{})
	c := dial(t, addr)
	send := func(stan int, cvn2 iso8583.CVN2) (rc string, phone iso8583.Phone) {
		t.Helper()
		msg := build(t, msgSpec{mti: "0100", pc: "000000", pan: panDebit, expiry: "2812", stan: stan})
		de48 := iso8583.AccountVerification{RequestorID: "40010075001", DeviceID: "PHONE-1", CVN2: cvn2}.Encode()
		if err := msg.Field(iso8583.FieldPrivateTokenData, de48); err != nil {
			t.Fatal(err)
		}
		c.send(msg)
		resp, err := c.recv(5 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if mti, _ := resp.GetMTI(); mti != "0110" {
			t.Fatalf("MTI %s", mti)
		}
		av, err := iso8583.ParseVerificationAnswer(iso8583.FieldValue(resp, iso8583.FieldPrivateTokenData))
		if err != nil {
			t.Fatal(err)
		}
		return get(t, resp, iso8583.FieldResponseCode), av.Phone
	}
	// The approval tells the switch where the code goes: DE48 tag 05.
	if rc, phone := send(1, cvn2Of(panDebit)); rc != "00" || phone != world.PhoneFor(7, panDebit) {
		t.Fatalf("right CVN2: rc %s, phone %v", rc, phone)
	}
	if rc, phone := send(2, wrongCVN2(panDebit)); rc != "05" || phone != "" {
		t.Fatalf("wrong CVN2: rc %s, phone %v", rc, phone)
	}
	if rc, _ := send(3, "12"); rc != "30" {
		t.Fatalf("a 2-digit CVN2: rc %s, want 30", rc)
	}
	wantAcct(t, s, panDebit, 100_00, 0)
	if n := len(s.Ledger()); n != 0 {
		t.Fatalf("verifications left %d ledger entries", n)
	}
}
