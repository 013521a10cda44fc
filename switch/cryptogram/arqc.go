package cryptogram

import (
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/tapswitch/tapswitch/iso8583/mac"
)

// Sizes of the algorithm's parts.
const (
	KeyBytes        = 16 // a token key and a session key
	ARQCBytes       = 8
	TerminalBytes   = 8 // DE41
	macInputBytes   = 1 + 12 + 3 + 6 + 2 + TerminalBytes + 4 + 2 + 3
	amountDigitsMax = 12
)

// Layout is the version of the MAC input layout, its first byte. Layout 1
// (32 bytes, without the terminal) is gone: no phone computing it was ever
// deployed, so the switch accepts layout 2 only.
const Layout = 2

// DateSkewDaysMax is how many calendar days a tap's date (9A) may lie from
// the switch's date, either way: a terminal's clock around midnight, never
// a cryptogram made for another week (docs/cryptogram.md).
const DateSkewDaysMax = 1

// Tap is what an ARQC covers: the terminal's request and the phone's
// counter and CVM.
type Tap struct {
	Amount        int64   // minor units, DE4: 0..999999999999
	Currency      string  // DE49, 3 digits
	Date          string  // 9A, YYMMDD
	Type          string  // transaction type: the first two digits of DE3
	Terminal      string  // DE41: 1..8 printable ASCII, right-padded with spaces to 8 in the MAC input
	Unpredictable [4]byte // 9F37, from the terminal
	Counter       uint32  // the phone's counter; 9F36 is its low 16 bits
	CVM           [3]byte // 9F34
}

// ATC is the counter's low 16 bits, what 9F36 carries.
func (t Tap) ATC() uint16 { return uint16(t.Counter) }

var errKey = errors.New("cryptogram: token key must be 16 bytes")

// SessionKey is the key of one tap: the token key's MAC of the counter.
func SessionKey(tokenKey []byte, counter uint32) []byte {
	k := sessionKey(tokenKey, counter)
	return k[:]
}

func sessionKey(tokenKey []byte, counter uint32) [KeyBytes]byte {
	var c [4]byte
	binary.BigEndian.PutUint32(c[:], counter)
	sum := mac.HMACSHA256(tokenKey, c[:])
	return [KeyBytes]byte(sum[:KeyBytes])
}

// appendMACInput appends the 41-byte MAC input of t (layout 2), refusing
// fields that do not have their fixed form: two different taps must never
// share one.
func (t Tap) appendMACInput(dst []byte) ([]byte, error) {
	switch {
	case t.Amount < 0 || t.Amount > 999_999_999_999:
		return nil, fmt.Errorf("cryptogram: amount %d outside 0..999999999999", t.Amount)
	case !digits(t.Currency, 3):
		return nil, fmt.Errorf("cryptogram: currency %q is not 3 digits", t.Currency)
	case !validDate(t.Date):
		return nil, fmt.Errorf("cryptogram: date %q is not a YYMMDD date", t.Date)
	case !digits(t.Type, 2):
		return nil, fmt.Errorf("cryptogram: transaction type %q is not 2 digits", t.Type)
	case !validTerminal(t.Terminal):
		return nil, fmt.Errorf("cryptogram: terminal ID %q is not 1..%d printable characters", t.Terminal, TerminalBytes)
	}
	dst = append(dst, Layout)
	var digitsBuf [amountDigitsMax]byte
	amount := strconv.AppendInt(digitsBuf[:0], t.Amount, 10)
	for range amountDigitsMax - len(amount) {
		dst = append(dst, '0')
	}
	dst = append(dst, amount...)
	dst = append(dst, t.Currency...)
	dst = append(dst, t.Date...)
	dst = append(dst, t.Type...)
	dst = append(dst, t.Terminal...)
	for range TerminalBytes - len(t.Terminal) {
		dst = append(dst, ' ')
	}
	dst = append(dst, t.Unpredictable[:]...)
	dst = binary.BigEndian.AppendUint16(dst, t.ATC())
	return append(dst, t.CVM[:]...), nil
}

// ARQC computes the cryptogram the phone sends for t.
func ARQC(tokenKey []byte, t Tap) ([ARQCBytes]byte, error) {
	var out [ARQCBytes]byte
	if len(tokenKey) != KeyBytes {
		return out, errKey
	}
	var buf [macInputBytes]byte
	in, err := t.appendMACInput(buf[:0])
	if err != nil {
		return out, err
	}
	session := sessionKey(tokenKey, t.Counter)
	sum := mac.HMACSHA256(session[:], in)
	copy(out[:], sum[:])
	return out, nil
}

// Verify reports whether arqc is t's cryptogram under tokenKey. The
// comparison takes the same time wherever the first differing byte is.
func Verify(tokenKey []byte, t Tap, arqc [ARQCBytes]byte) bool {
	want, err := ARQC(tokenKey, t)
	if err != nil {
		return false
	}
	return hmac.Equal(want[:], arqc[:])
}

func digits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validTerminal reports a DE41 the MAC input can hold: 1..8 printable
// ASCII characters, not all spaces. A shorter one stands for itself padded
// with spaces, as the wire carries it, and the codec strips them again.
func validTerminal(s string) bool {
	if len(s) == 0 || len(s) > TerminalBytes {
		return false
	}
	blank := true
	for i := range len(s) {
		if s[i] < 0x20 || s[i] > 0x7E {
			return false
		}
		blank = blank && s[i] == ' '
	}
	return !blank
}

// DaysApart is how many calendar days lie between the YYMMDD date (years
// 2000-2099) and today's date in today's own location, either way: the
// switch passes its clock in the network's time zone. ok is false for a
// date that is not one.
func DaysApart(date string, today time.Time) (days int, ok bool) {
	if !validDate(date) {
		return 0, false
	}
	yy, _ := strconv.Atoi(date[0:2])
	mm, _ := strconv.Atoi(date[2:4])
	dd, _ := strconv.Atoi(date[4:6])
	d := time.Date(2000+yy, time.Month(mm), dd, 0, 0, 0, 0, time.UTC)
	y, m, day := today.Date()
	t := time.Date(y, m, day, 0, 0, 0, 0, time.UTC)
	// Whole days in UTC, which has no daylight saving; Sub saturates far
	// beyond any two-digit year, which stays far apart.
	days = int(d.Sub(t) / (24 * time.Hour))
	if days < 0 {
		days = -days
	}
	return days, true
}

// validDate reports a YYMMDD that names a day of the calendar.
func validDate(s string) bool {
	if !digits(s, 6) {
		return false
	}
	yy, _ := strconv.Atoi(s[0:2])
	mm, _ := strconv.Atoi(s[2:4])
	dd, _ := strconv.Atoi(s[4:6])
	return mm >= 1 && mm <= 12 && dd >= 1 && dd <= daysIn(2000+yy, mm)
}

func daysIn(year, month int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}
