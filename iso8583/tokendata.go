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
)

// Encode returns the DE48 value.
func (t TokenData) Encode() string {
	out := make([]byte, 0, 64)
	out = appendSubelement(out, tokenDataTagToken, t.Token.Clear())
	out = appendSubelement(out, tokenDataTagRequestor, t.RequestorID)
	out = appendSubelement(out, tokenDataTagDevice, t.DeviceID)
	return string(out)
}

func appendSubelement(out []byte, tag, value string) []byte {
	out = append(out, tag...)
	out = append(out, fmt.Sprintf("%03d", len(value))...)
	return append(out, value...)
}

// ParseTokenData reads a DE48 value written by Encode.
func ParseTokenData(s string) (TokenData, error) {
	var t TokenData
	for len(s) > 0 {
		if len(s) < 5 {
			return t, fmt.Errorf("DE48: %d trailing bytes are not a subelement", len(s))
		}
		tag := s[:2]
		n, err := strconv.Atoi(s[2:5])
		if err != nil || !isDigits(s[2:5]) || n > len(s)-5 {
			return t, fmt.Errorf("DE48: subelement %s has a bad length %q", tag, s[2:5])
		}
		value := s[5 : 5+n]
		switch tag {
		case tokenDataTagToken:
			t.Token = PAN(value)
		case tokenDataTagRequestor:
			t.RequestorID = value
		case tokenDataTagDevice:
			t.DeviceID = value
		}
		s = s[5+n:]
	}
	return t, nil
}
