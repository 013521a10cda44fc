package iso8583

import (
	"fmt"
	"strconv"
)

// TokenData is what the switch tells the issuer about a token transaction in
// DE48 (additional data, private). The field is a sequence of subelements,
// each a 2-digit tag, a 3-digit length and that many bytes of printable ASCII:
//
//	tag 01  token (the number the terminal sent in DE2)
//	tag 02  token requestor ID (the wallet provider, 11 digits)
//	tag 03  device ID the token is bound to
//	tag 04  CVN2 keyed in by the cardholder, only in an account
//	        verification (AccountVerification), never with a token
//	tag 05  the cardholder's mobile number, only in the issuer's 0110
//	        answer to an account verification (VerificationAnswer)
//
// Unknown tags are skipped so issuers keep working when tags are added.
type TokenData struct {
	Token       PAN
	RequestorID string
	DeviceID    string
}

const (
	tokenDataTagToken     = "01"
	tokenDataTagRequestor = "02"
	tokenDataTagDevice    = "03"
	tokenDataTagCVN2      = "04"
)

// Encode returns the DE48 value.
func (t TokenData) Encode() string {
	return string(t.Append(make([]byte, 0, 64)))
}

// Append appends the DE48 value to dst, for a Builder (which copies it).
func (t TokenData) Append(dst []byte) []byte {
	dst = appendSubelement(dst, tokenDataTagToken, t.Token.Clear())
	dst = appendSubelement(dst, tokenDataTagRequestor, t.RequestorID)
	return appendSubelement(dst, tokenDataTagDevice, t.DeviceID)
}

// appendSubelement appends tag, the value's length in 3 digits and the
// value. A value of 1000 bytes or more has no length in 3 digits: its
// length is written as moov would refuse it ("1000"), never cut.
func appendSubelement(out []byte, tag, value string) []byte {
	out = append(out, tag...)
	n := len(value)
	if n > 999 {
		out = strconv.AppendInt(out, int64(n), 10)
	} else {
		out = append(out, byte('0'+n/100), byte('0'+n/10%10), byte('0'+n%10))
	}
	return append(out, value...)
}

// ParseTokenData reads a DE48 value written by Encode.
func ParseTokenData(s string) (TokenData, error) {
	var t TokenData
	err := eachSubelement(s, func(tag, value string) error {
		switch tag {
		case tokenDataTagToken:
			t.Token = PAN(value)
		case tokenDataTagRequestor:
			t.RequestorID = value
		case tokenDataTagDevice:
			t.DeviceID = value
		}
		return nil
	})
	return t, err
}

// eachSubelement calls f with every subelement of a DE48 value, in order,
// and stops at the first error.
func eachSubelement(s string, f func(tag, value string) error) error {
	for len(s) > 0 {
		if len(s) < 5 {
			return fmt.Errorf("DE48: %d trailing bytes are not a subelement", len(s))
		}
		tag := s[:2]
		n, err := strconv.Atoi(s[2:5])
		if err != nil || !isDigits(s[2:5]) || n > len(s)-5 {
			return fmt.Errorf("DE48: subelement %s has a bad length %q", tag, s[2:5])
		}
		if err := f(tag, s[5:5+n]); err != nil {
			return err
		}
		s = s[5+n:]
	}
	return nil
}

// CVN2 is the 3-digit card verification number printed on the back of a
// card. Like PAN it masks itself whenever it is printed, formatted or
// marshalled, so it cannot reach a log line by accident; Clear returns it.
type CVN2 string

// Clear returns the digits.
func (c CVN2) Clear() string { return string(c) }

// String returns "***".
func (c CVN2) String() string { return "***" }

// GoString masks %#v too.
func (c CVN2) GoString() string { return "***" }

// MarshalText masks the value in JSON and zerolog output.
func (c CVN2) MarshalText() ([]byte, error) { return []byte("***"), nil }

// Format masks every verb.
func (c CVN2) Format(f fmt.State, verb rune) { fmt.Fprint(f, "***") }

// Valid reports whether c is exactly 3 digits.
func (c CVN2) Valid() bool { return len(c) == 3 && isDigits(string(c)) }

// AccountVerification is DE48 of an account verification: an 0100 with DE3
// 000000 and DE4 zero by which the switch asks the issuer whether a card a
// wallet wants to bind is real and in the hands of its holder (PAN in DE2,
// expiry in DE14, CVN2 here). The issuer answers without posting anything.
// It uses TokenData's subelements, without tag 01 (no token exists yet),
// and adds tag 04, the CVN2:
//
//	tag 02  token requestor ID (the wallet provider, 11 digits)
//	tag 03  device ID the token will be bound to
//	tag 04  CVN2, 3 digits
//
// A separate type rather than a field of TokenData, so that no token
// authorization can ever carry a CVN2 by mistake.
type AccountVerification struct {
	RequestorID string
	DeviceID    string
	CVN2        CVN2
}

// Encode returns the DE48 value; tag 04 only when there is a CVN2.
func (a AccountVerification) Encode() string {
	out := make([]byte, 0, 48)
	out = appendSubelement(out, tokenDataTagRequestor, a.RequestorID)
	out = appendSubelement(out, tokenDataTagDevice, a.DeviceID)
	if a.CVN2 != "" {
		out = appendSubelement(out, tokenDataTagCVN2, a.CVN2.Clear())
	}
	return string(out)
}

// ParseAccountVerification reads a DE48 value written by Encode. A tag 04
// that is not 3 digits is an error, which names the tag but never the value.
// Absent tags leave their fields empty; the caller decides whether a DE48
// without a CVN2 is an account verification at all.
func ParseAccountVerification(s string) (AccountVerification, error) {
	var a AccountVerification
	err := eachSubelement(s, func(tag, value string) error {
		switch tag {
		case tokenDataTagRequestor:
			a.RequestorID = value
		case tokenDataTagDevice:
			a.DeviceID = value
		case tokenDataTagCVN2:
			a.CVN2 = CVN2(value)
			if !a.CVN2.Valid() {
				return fmt.Errorf("DE48: subelement %s (CVN2) is not 3 digits", tag)
			}
		}
		return nil
	})
	return a, err
}
