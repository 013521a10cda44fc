package iso8583

import (
	"errors"
	"fmt"
)

// Phone is a cardholder's mobile number as the issuer has it on file:
// 11 digits of the Chinese mobile plan, 1[3-9]x xxxx xxxx. Like PAN and
// CVN2 it masks itself whenever it is printed, formatted or marshalled
// ("1**-****-**34"), so it cannot reach a log line, an audit record or a
// JSON answer by accident; Clear returns the digits, for the SMS gateway
// alone.
type Phone string

// phoneDigits is the length of a mainland mobile number.
const phoneDigits = 11

// Clear returns the digits.
func (p Phone) Clear() string { return string(p) }

// Masked returns the first digit and the last two, "1**-****-**34": enough
// for a cardholder to recognise their number, too little to call it. A
// value that is not a valid number masks to "***".
func (p Phone) Masked() string {
	if !p.Valid() {
		return "***"
	}
	return p[:1].Clear() + "**-****-**" + p[9:].Clear()
}

// String returns Masked.
func (p Phone) String() string { return p.Masked() }

// GoString masks %#v too.
func (p Phone) GoString() string { return p.Masked() }

// MarshalText masks the value in JSON and zerolog output.
func (p Phone) MarshalText() ([]byte, error) { return []byte(p.Masked()), nil }

// Format masks every verb.
func (p Phone) Format(f fmt.State, verb rune) { fmt.Fprint(f, p.Masked()) }

// Valid reports whether p is 11 digits starting 13 to 19.
func (p Phone) Valid() bool {
	return len(p) == phoneDigits && isDigits(string(p)) && p[0] == '1' && p[1] >= '3'
}

// VerificationAnswer is DE48 of the issuer's 0110 answer to an account
// verification (AccountVerification). On an approval (DE39 00) the issuer
// tells the switch where the cardholder's one-time code must go:
//
//	tag 05  the cardholder's mobile number on file, 11 digits
//
// The switch sends the code to that number and to no other: a wallet
// account never chooses where its code goes. The tag travels only on the
// authenticated issuer link, only in an 0110 to a verification, and never
// in a request; the switch keeps the number sealed and never logs it. An
// approval without the tag (an issuer with no number on file) cannot be
// confirmed, and the switch refuses the binding.
type VerificationAnswer struct {
	Phone Phone
}

const verificationTagPhone = "05"

// Encode returns the DE48 value, "" when there is no phone.
func (v VerificationAnswer) Encode() string {
	if v.Phone == "" {
		return ""
	}
	return string(appendSubelement(nil, verificationTagPhone, v.Phone.Clear()))
}

// errBadPhoneTag names the tag, never the value.
var errBadPhoneTag = errors.New("DE48: subelement 05 (phone) is not an 11-digit mobile number")

// ParseVerificationAnswer reads a DE48 value written by Encode. Unknown
// tags are skipped; a tag 05 that is not a mobile number is an error.
func ParseVerificationAnswer(s string) (VerificationAnswer, error) {
	var v VerificationAnswer
	err := eachSubelement(s, func(tag, value string) error {
		if tag == verificationTagPhone {
			v.Phone = Phone(value)
			if !v.Phone.Valid() {
				v.Phone = ""
				return errBadPhoneTag
			}
		}
		return nil
	})
	return v, err
}
