package authorize

import (
	"bytes"
	"testing"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// issuerRequestMoov is issuerRequest as the switch built it before the fast
// codec, kept verbatim as the reference the Builder is held to.
func issuerRequestMoov(req Request, tok vault.Token, issuerInstitution, switchInstitution string, e *journal.Entry) *moov.Message {
	setIfPresent := func(m *moov.Message, id int, v string) {
		if v != "" {
			m.Field(id, v)
		}
	}
	m := iso8583.NewMessage()
	m.MTI(req.MTI)
	m.Field(iso8583.FieldPAN, tok.PAN.Clear())
	m.Field(iso8583.FieldProcessingCode, req.ProcessingCode)
	m.Field(iso8583.FieldAmount, req.Amount.Field())
	m.Field(iso8583.FieldTransmissionTime, e.IssuerTransmissionTime)
	m.Field(iso8583.FieldSTAN, e.IssuerSTAN)
	setIfPresent(m, iso8583.FieldLocalTime, req.LocalTime)
	setIfPresent(m, iso8583.FieldLocalDate, req.LocalDate)
	m.Field(iso8583.FieldExpiry, tok.CardExpiry)
	m.Field(iso8583.FieldMCC, req.MCC)
	m.Field(iso8583.FieldPOSEntryMode, req.POSEntryMode)
	setIfPresent(m, iso8583.FieldPOSCondition, req.POSCondition)
	m.Field(iso8583.FieldAcquirer, req.Acquirer)
	m.Field(iso8583.FieldForwarder, switchInstitution)
	m.Field(iso8583.FieldRRN, req.RRN)
	m.Field(iso8583.FieldTerminalID, req.TerminalID)
	m.Field(iso8583.FieldMerchantID, req.MerchantID)
	setIfPresent(m, iso8583.FieldMerchantNameLocation, req.MerchantName)
	requestor := tok.RequestorID
	if requestor == "" {
		requestor = tokenRequestorFallback
	}
	td := iso8583.TokenData{Token: req.Token, RequestorID: requestor, DeviceID: tok.DeviceID}
	m.Field(iso8583.FieldPrivateTokenData, td.Encode())
	m.Field(iso8583.FieldCurrency, req.Currency)
	m.Field(iso8583.FieldReceivingInstitution, issuerInstitution)
	return m
}

// The request the issuer receives packs to the same bytes from the Builder
// as it did from moov, for every kind of request the pipeline forwards.
// Chip data (DE55) and a refund's original (DE90) are checked by the switch
// and never forwarded, by either: the cases carrying them show they stay
// out alike.
func TestIssuerRequestPacksAsMoov(t *testing.T) {
	purchase := Request{
		MTI: iso8583.MTIFinancialRequest, ProcessingCode: iso8583.ProcPurchase, Token: "6288880000000017",
		TokenExpiry: "3012", Amount: 12_34, Currency: iso8583.CurrencyCNY, TransmissionTime: "0315100000",
		STAN: "000042", LocalTime: "180000", LocalDate: "0315", MCC: "5411", POSEntryMode: "072",
		POSCondition: "00", Acquirer: "01020000", RRN: "031510000042", TerminalID: "TERM0001",
		MerchantID: "MERCHANT0000001", MerchantName: "TEST SHOP SHANGHAI",
	}
	tok := vault.Token{Token: "6288880000000017", PAN: "6222020000000001", CardExpiry: "2812",
		DeviceID: "MIPHONE-0001", RequestorID: "40010030273"}
	entry := journal.Entry{IssuerSTAN: "000777", IssuerTransmissionTime: "0315100001"}

	chip := purchase
	chip.ICC = []byte{0x9f, 0x26, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x9f, 0x36, 0x02, 0x00, 0x07}
	auth := purchase
	auth.MTI = iso8583.MTIAuthRequest
	bare := purchase // the optional fields left out
	bare.LocalTime, bare.LocalDate, bare.POSCondition, bare.MerchantName = "", "", "", ""
	refund := purchase
	refund.ProcessingCode = iso8583.ProcRefund
	refund.OriginalMTI, refund.Original = iso8583.MTIFinancialRequest, journal.Key{TerminalID: "TERM0001", STAN: "000041", TransmissionTime: "0315095900"}
	topUp := purchase
	topUp.ProcessingCode, topUp.Amount = iso8583.ProcTransitTopUp, 100_00
	balance := auth
	balance.ProcessingCode, balance.Amount = iso8583.ProcBalanceInquiry, 0
	big := purchase
	big.Amount = 999_999_999_999
	noRequestor := tok
	noRequestor.RequestorID = ""

	for _, tt := range []struct {
		name string
		req  Request
		tok  vault.Token
	}{
		{"purchase 0200", purchase, tok},
		{"purchase with chip data", chip, tok},
		{"authorization 0100", auth, tok},
		{"without optional fields", bare, tok},
		{"refund naming its original", refund, tok},
		{"transit top-up", topUp, tok},
		{"balance inquiry", balance, tok},
		{"largest amount", big, tok},
		{"token without requestor", purchase, noRequestor},
	} {
		t.Run(tt.name, func(t *testing.T) {
			want, err := iso8583.Pack(issuerRequestMoov(tt.req, tt.tok, "01020000", "99990000", &entry))
			if err != nil {
				t.Fatal(err)
			}
			var b iso8583.Builder
			scratch := issuerRequest(&b, []byte("left over from the last request"), tt.req, tt.tok, "01020000", "99990000", &entry)
			got, err := b.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Builder packs\n%q\nmoov packed\n%q", got, want)
			}
			if td := string(b.Value(iso8583.FieldPrivateTokenData)); string(scratch) != td {
				t.Fatalf("scratch %q, DE48 %q", scratch, td)
			}
		})
	}
}

// issuerAnswerMoov is issuerAnswer as it read a moov message before the
// fast codec, the reference for the one reading iso8583.Fields.
func issuerAnswerMoov(req Request, resp *moov.Message) (rc, authCode, balance string) {
	rc, authCode = IssuerAnswer(req.ProcessingCode, iso8583.FieldValue(resp, iso8583.FieldResponseCode),
		iso8583.FieldValue(resp, iso8583.FieldAuthCode))
	if rc == iso8583.RCApproved && req.ProcessingCode == iso8583.ProcBalanceInquiry {
		balance = iso8583.FieldValue(resp, iso8583.FieldAdditionalAmounts)
	}
	return rc, authCode, balance
}

// Every answer an issuer may give maps to the same code, auth code and
// balance read in place as it did read by moov: unknown and missing codes,
// approvals without an auth code, padding, a balance only where asked.
func TestIssuerAnswerAsMoov(t *testing.T) {
	purchase := Request{ProcessingCode: iso8583.ProcPurchase}
	balance := Request{ProcessingCode: iso8583.ProcBalanceInquiry}
	for _, tt := range []struct {
		name   string
		req    Request
		fields map[int]string
		rc     string // what the terminal is told
	}{
		{"approved", purchase, map[int]string{39: "00", 38: "A1B2C3"}, "00"},
		{"approved, padded auth code", purchase, map[int]string{39: "00", 38: "AB"}, "00"},
		{"approved without auth code", purchase, map[int]string{39: "00"}, "96"},
		{"approved with a blank auth code", purchase, map[int]string{39: "00", 38: "      "}, "96"},
		{"declined keeps no auth code", purchase, map[int]string{39: "51", 38: "A1B2C3"}, "51"},
		{"code outside the contract", purchase, map[int]string{39: "A1", 38: "A1B2C3"}, "05"},
		{"issuer unavailable is not passed on", purchase, map[int]string{39: "91"}, "05"},
		{"one-character code", purchase, map[int]string{39: "0", 38: "A1B2C3"}, "05"},
		{"no code", purchase, map[int]string{38: "A1B2C3"}, "05"},
		{"balance", balance, map[int]string{39: "00", 54: "1002156C000000012345"}, "00"},
		{"balance declined", balance, map[int]string{39: "14", 54: "1002156C000000012345"}, "14"},
		{"balance on a purchase is not read", purchase, map[int]string{39: "00", 38: "A1B2C3", 54: "1002156C000000012345"}, "00"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := iso8583.NewMessage()
			m.MTI(iso8583.MTIFinancialResponse)
			m.Field(iso8583.FieldSTAN, "000001")
			for id, v := range tt.fields {
				m.Field(id, v)
			}
			payload, err := iso8583.Pack(m)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := iso8583.Unpack(payload)
			if err != nil {
				t.Fatal(err)
			}
			var f iso8583.Fields
			if err := f.Parse(payload); err != nil {
				t.Fatal(err)
			}
			rc, authCode, bal := issuerAnswer(tt.req, &f)
			wrc, wauth, wbal := issuerAnswerMoov(tt.req, resp)
			if rc != wrc || authCode != wauth || bal != wbal {
				t.Fatalf("in place %q %q %q, by moov %q %q %q", rc, authCode, bal, wrc, wauth, wbal)
			}
			if rc != tt.rc {
				t.Fatalf("rc %s, want %s", rc, tt.rc)
			}
			// The values outlive the payload's buffer.
			for i := range payload {
				payload[i] = '#'
			}
			if rc != wrc || authCode != wauth || bal != wbal {
				t.Fatalf("after the buffer was reused: %q %q %q", rc, authCode, bal)
			}
		})
	}
}
