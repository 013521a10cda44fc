package iso8583

import (
	"strings"
	"testing"
)

func TestTokenDataEncode(t *testing.T) {
	td := TokenData{Token: "6288880012345679", RequestorID: "50110030273", DeviceID: "MI-8F3A2C91D0E4B7"}
	want := "01016" + "6288880012345679" + "02011" + "50110030273" + "03017" + "MI-8F3A2C91D0E4B7"
	if got := td.Encode(); got != want {
		t.Fatalf("Encode() = %q, want %q", got, want)
	}
}

func TestTokenDataRoundTrip(t *testing.T) {
	tests := []TokenData{
		{Token: "6288880012345679", RequestorID: "50110030273", DeviceID: "MI-8F3A2C91D0E4B7"},
		{Token: "6288880000000000005", RequestorID: "50110030273", DeviceID: strings.Repeat("d", 200)},
		{}, // empty subelements still encode
		{Token: "6288880012345679"},
	}
	for _, td := range tests {
		enc := td.Encode()
		got, err := ParseTokenData(enc)
		if err != nil || got != td {
			t.Errorf("ParseTokenData(%q) = %+v, %v; want %+v", enc, got, err, td)
		}
		if len(enc) > fieldDefs[FieldPrivateTokenData].length {
			t.Errorf("Encode() is %d bytes, more than DE48 holds", len(enc))
		}
		// And through the codec, as DE48.
		msg := NewMessage()
		msg.MTI(MTIFinancialRequest)
		if err := msg.Field(FieldPrivateTokenData, enc); err != nil {
			t.Fatal(err)
		}
		frame, err := Pack(msg)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Unpack(frame)
		if err != nil {
			t.Fatal(err)
		}
		de48, _ := back.GetString(FieldPrivateTokenData)
		if got, err := ParseTokenData(de48); err != nil || got != td {
			t.Errorf("DE48 %q parsed to %+v, %v; want %+v", de48, got, err, td)
		}
	}
}

func TestParseTokenDataSkipsUnknownTags(t *testing.T) {
	in := "99003abc" + "01016" + "6288880012345679" + "04000" + "03002d1"
	got, err := ParseTokenData(in)
	want := TokenData{Token: "6288880012345679", DeviceID: "d1"}
	if err != nil || got != want {
		t.Fatalf("ParseTokenData(%q) = %+v, %v; want %+v", in, got, err, want)
	}
}

func TestParseTokenDataRefuses(t *testing.T) {
	for _, in := range []string{
		"0",
		"01",
		"0101",             // length cut short
		"01abc",            // length not digits
		"01+01x",           // sign in the length
		"01-01x",           // negative length
		"01 01x",           // space in the length
		"01005abc",         // value shorter than its length
		"01003abc02",       // trailing bytes
		"01003abc0200",     // trailing length cut short
		"01003abc02011123", // second value short
	} {
		if got, err := ParseTokenData(in); err == nil {
			t.Errorf("ParseTokenData(%q) = %+v, want an error", in, got)
		}
	}
}

func TestParseTokenDataEmpty(t *testing.T) {
	got, err := ParseTokenData("")
	if err != nil || got != (TokenData{}) {
		t.Fatalf("ParseTokenData(\"\") = %+v, %v; want zero TokenData", got, err)
	}
}
