package iso8583

import "fmt"

// PAN is a primary account number (or a token, which has the same shape).
// It masks itself whenever it is printed, formatted or marshalled as text, so
// a PAN that reaches a log line shows at most its first 6 and last 4 digits.
// Clear returns the digits for the places that need them: the issuer message
// and the vault's encryption.
type PAN string

// Clear returns the full number.
func (p PAN) Clear() string { return string(p) }

// String returns the masked number.
func (p PAN) String() string { return MaskPAN(string(p)) }

// GoString masks %#v too.
func (p PAN) GoString() string { return MaskPAN(string(p)) }

// MarshalText masks the number in JSON, YAML and zerolog output.
func (p PAN) MarshalText() ([]byte, error) { return []byte(MaskPAN(string(p))), nil }

// Format masks every verb, %s, %v, %q and %d alike.
func (p PAN) Format(f fmt.State, verb rune) {
	fmt.Fprint(f, MaskPAN(string(p)))
}

// MaskPAN keeps the first 6 and last 4 digits of a number of 13 or more
// digits and replaces the rest with '*'. Shorter strings are masked whole but
// for their last 4 digits, so a truncated PAN never leaks more than 4 digits.
func MaskPAN(s string) string {
	n := len(s)
	keepHead, keepTail := 6, 4
	if n < 13 {
		keepHead = 0
		if n <= 4 {
			keepTail = 0
		}
	}
	out := []byte(s)
	for i := keepHead; i < n-keepTail; i++ {
		out[i] = '*'
	}
	return string(out)
}

// LuhnValid reports whether digits carries a correct Luhn check digit.
func LuhnValid(digits string) bool {
	if len(digits) < 2 || !isDigits(digits) {
		return false
	}
	return (luhnSum(digits[:len(digits)-1])+int(digits[len(digits)-1]-'0'))%10 == 0
}

// LuhnCheckDigit returns the digit that makes body+digit Luhn-valid.
func LuhnCheckDigit(body string) byte {
	return byte('0' + (10-luhnSum(body)%10)%10)
}

// luhnSum is the Luhn sum of body as if a check digit followed it.
func luhnSum(body string) int {
	sum := 0
	double := true
	for i := len(body) - 1; i >= 0; i-- {
		d := int(body[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum
}
