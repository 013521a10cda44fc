package iso8583

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Amount is money in minor units (fen for CNY). Never a float.
type Amount int64

// CurrencyCNY is the ISO 4217 numeric code the network settles in.
const CurrencyCNY = "156"

// ParseAmountField reads DE4: up to 12 digits of minor units.
func ParseAmountField(s string) (Amount, error) {
	if len(s) == 0 || len(s) > 12 || !isDigits(s) {
		return 0, fmt.Errorf("amount %q is not 1 to 12 digits", s)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return Amount(n), err
}

// Field returns the DE4 form, 12 digits zero-padded.
func (a Amount) Field() string {
	return fmt.Sprintf("%012d", int64(a))
}

// String formats the amount in major units with two decimals, e.g. 12.34.
func (a Amount) String() string {
	sign := ""
	n := int64(a)
	if n < 0 {
		sign, n = "-", -n
	}
	return fmt.Sprintf("%s%d.%02d", sign, n/100, n%100)
}

// ParseDecimalAmount reads a human amount such as "12.34" or "12" into
// minor units exactly, without floating point.
func ParseDecimalAmount(s string) (Amount, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	if whole == "" || !isDigits(whole) || (hasDot && (len(frac) == 0 || len(frac) > 2 || !isDigits(frac))) {
		return 0, fmt.Errorf("amount %q: want digits with at most two decimals, e.g. 12.34", s)
	}
	for len(frac) < 2 {
		frac += "0"
	}
	if len(whole) > 10 {
		return 0, errors.New("amount too large for DE4")
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt(frac, 10, 64)
	return Amount(w*100 + f), nil
}
