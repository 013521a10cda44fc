package iso8583

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func TestPhoneMasksItself(t *testing.T) {
	p := Phone("13812345634")
	v := VerificationAnswer{Phone: p}
	for what, out := range map[string]string{
		"%v": fmt.Sprintf("%v", p), "%s": fmt.Sprintf("%s", p), "%d": fmt.Sprintf("%d", p),
		"%q": fmt.Sprintf("%q", p), "%#v": fmt.Sprintf("%#v", p), "%+v struct": fmt.Sprintf("%+v", v),
		"Sprint": fmt.Sprint(p),
	} {
		if strings.Contains(out, "3812345") {
			t.Errorf("%s prints the number: %q", what, out)
		}
	}
	if b, _ := json.Marshal(v); string(b) != `{"Phone":"1**-****-**34"}` {
		t.Errorf("JSON %s", b)
	}
	if p.Clear() != "13812345634" || p.Masked() != "1**-****-**34" || Phone("1234").Masked() != "***" {
		t.Error("Clear or Masked wrong")
	}
	for _, bad := range []string{"", "1381234563", "138123456345", "12812345634", "23812345634", "1381234563a"} {
		if Phone(bad).Valid() {
			t.Errorf("%q valid", bad)
		}
	}
}

func TestVerificationAnswerRoundTrip(t *testing.T) {
	v := VerificationAnswer{Phone: "15912345678"}
	enc := v.Encode()
	if enc != "05011"+"15912345678" {
		t.Fatalf("Encode() = %q", enc)
	}
	got, err := ParseVerificationAnswer("99002xy" + enc)
	if err != nil || got != v {
		t.Fatalf("Parse = %+v, %v", got, err)
	}
	if (VerificationAnswer{}).Encode() != "" {
		t.Fatal("no phone encodes to something")
	}
	for _, bad := range []string{"05010" + "1591234567", "05011" + "2591234567x", "05011" + "12345678901"} {
		_, err := ParseVerificationAnswer(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), bad[5:]) {
			t.Errorf("error %q repeats the value", err)
		}
	}
}

// FuzzVerificationAnswer: never panics; what it accepts round-trips.
func FuzzVerificationAnswer(f *testing.F) {
	f.Add(VerificationAnswer{Phone: "13912345678"}.Encode())
	f.Add("05003abc")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > fuzzDE48BytesMax {
			return
		}
		v, err := ParseVerificationAnswer(s)
		if err != nil {
			return
		}
		back, err := ParseVerificationAnswer(v.Encode())
		if err != nil || back != v {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", s, back, err, v)
		}
	})
}
