package iso8583

import (
	"encoding/json"
	"fmt"
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

func TestAccountVerificationRoundTrip(t *testing.T) {
	a := AccountVerification{RequestorID: "40010075001", DeviceID: "PHONE-1", CVN2: "042"}
	enc := a.Encode()
	want := "02011" + "40010075001" + "03007" + "PHONE-1" + "04003" + "042"
	if enc != want {
		t.Fatalf("Encode() = %q, want %q", enc, want)
	}
	got, err := ParseAccountVerification(enc)
	if err != nil || got != a {
		t.Fatalf("ParseAccountVerification(%q) = %+v, %v; want %+v", enc, got, err, a)
	}
	// A token issuer reading it as token data sees no token and no CVN2.
	td, err := ParseTokenData(enc)
	if err != nil || td != (TokenData{RequestorID: "40010075001", DeviceID: "PHONE-1"}) {
		t.Fatalf("ParseTokenData(%q) = %+v, %v", enc, td, err)
	}
}

func TestAccountVerificationRejectsBadCVN2WithoutEchoingIt(t *testing.T) {
	for _, v := range []string{"04002" + "12", "04004" + "1234", "04003" + "12a"} {
		_, err := ParseAccountVerification(v)
		if err == nil {
			t.Errorf("ParseAccountVerification(%q) accepted a CVN2 that is not 3 digits", v)
			continue
		}
		if strings.Contains(err.Error(), v[5:]) {
			t.Errorf("error %q repeats the CVN2 value", err)
		}
	}
	if a, err := ParseAccountVerification("02011" + "40010075001"); err != nil || a.CVN2 != "" {
		t.Errorf("without tag 04: %+v, %v; want no CVN2, no error", a, err)
	}
}

func TestCVN2MasksItself(t *testing.T) {
	c := CVN2("731")
	a := AccountVerification{DeviceID: "d", CVN2: c}
	for what, out := range map[string]string{
		"%v": fmt.Sprintf("%v", c), "%s": fmt.Sprintf("%s", c), "%d": fmt.Sprintf("%d", c),
		"%q": fmt.Sprintf("%q", c), "%#v": fmt.Sprintf("%#v", c), "%+v struct": fmt.Sprintf("%+v", a),
		"%#v struct": fmt.Sprintf("%#v", a), "Sprint": fmt.Sprint(c),
	} {
		if strings.Contains(out, "731") {
			t.Errorf("%s prints the CVN2: %q", what, out)
		}
	}
	if b, _ := json.Marshal(a); strings.Contains(string(b), "731") {
		t.Errorf("JSON prints the CVN2: %s", b)
	}
	if c.Clear() != "731" || !c.Valid() || CVN2("73").Valid() {
		t.Error("Clear or Valid wrong")
	}
}

// FuzzAccountVerification: ParseAccountVerification never panics, and what
// it accepts encodes back to a value that parses to the same data.
func FuzzAccountVerification(f *testing.F) {
	f.Add(AccountVerification{RequestorID: "40010075001", DeviceID: "DEV-1", CVN2: "123"}.Encode())
	f.Add("04003abc")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > fuzzDE48BytesMax {
			return
		}
		a, err := ParseAccountVerification(s)
		if err != nil {
			return
		}
		back, err := ParseAccountVerification(a.Encode())
		if err != nil || back != a {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", s, back, err, a)
		}
	})
}
