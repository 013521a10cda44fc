package iso8583

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
)

// PurseLoadData is DE48 of leg 2 of a transit top-up: the 0200 load (DE3
// 220000) or opening (DE3 720000) the switch sends the card's transit
// operator, and the operator's 0210 (docs/wire.md section 12). It uses the
// subelements of TokenData (2-digit tag, 3-digit length, value):
//
//	tag 40  the purse's signed load request (PurseLoadRequest), 43 bytes:
//	        in a load's 0200 only; an opening has none (no purse yet)
//	tag 41  the operator's grant (PurseLoadGrant), 28 bytes: in an
//	        approved 0210
//	tag 42  the new card's purse key (PurseKey), 32 bytes: in an approved
//	        0210 to an opening only
//
// The known tags come in ascending order, each at most once: a value has
// one encoding, and two tag 40s in one load would leave it open which one
// the operator granted. Unknown tags are skipped, so peers keep working
// when tags are added.
type PurseLoadData struct {
	Request *PurseLoadRequest // tag 40
	Grant   *PurseLoadGrant   // tag 41
	Key     *PurseKey         // tag 42
}

// Subelement tags of PurseLoadData.
const (
	PurseTagRequest = "40"
	PurseTagGrant   = "41"
	PurseTagKey     = "42"
)

// Sizes of the values.
const (
	// PurseMACBytes is the length of MAC1 and MAC2 (transit.LoadMACBytes).
	PurseMACBytes = 8
	// PurseKeyBytes is the length of a purse key (transit.PurseKeyBytes).
	PurseKeyBytes = 16
	// PurseBalanceMax is the largest balance the 12 digits hold.
	PurseBalanceMax = 999_999_999_999

	purseBalanceDigits  = 12
	purseCounterDigits  = 5
	purseSequenceDigits = 10
	purseMACHex         = 2 * PurseMACBytes
	// PurseRequestBytes, PurseGrantBytes and PurseKeyHexBytes are the
	// lengths of the tag 40, 41 and 42 values.
	PurseRequestBytes = purseBalanceDigits + purseCounterDigits + purseSequenceDigits + purseMACHex
	PurseGrantBytes   = purseBalanceDigits + purseMACHex
	PurseKeyHexBytes  = 2 * PurseKeyBytes
)

// PurseLoadRequest is tag 40: the state the purse signed with MAC1
// (transit.LoadRequest without the card and the amount, which are DE2 and
// DE4):
//
//	balance (12 digits, fen) | counter (5 digits) | sequence (10 digits) | MAC1 (16 lower-case hex)
type PurseLoadRequest struct {
	Balance  int64
	Counter  uint16
	Sequence uint32
	MAC      [PurseMACBytes]byte
}

// PurseLoadGrant is tag 41: the operator's grant (transit.LoadGrant):
//
//	balance after (12 digits, fen) | MAC2 (16 lower-case hex)
type PurseLoadGrant struct {
	BalanceAfter int64
	MAC          [PurseMACBytes]byte
}

// PurseKey is tag 42: a new card's purse key, 32 lower-case hex. Like PAN
// it masks itself whenever it is printed, formatted or marshalled, so it
// cannot reach a log line by accident; the bytes are the array's.
type PurseKey [PurseKeyBytes]byte

// String returns "***".
func (k PurseKey) String() string { return "***" }

// GoString masks %#v too.
func (k PurseKey) GoString() string { return "***" }

// MarshalText masks the key in JSON and zerolog output.
func (k PurseKey) MarshalText() ([]byte, error) { return []byte("***"), nil }

// Format masks every verb.
func (k PurseKey) Format(f fmt.State, verb rune) { fmt.Fprint(f, "***") }

// Errors of the purse-load values; they name the tag, never the value (a
// key is a secret, a MAC no business of a log).
var (
	ErrPurseRequest = errors.New("DE48: subelement 40 (purse load request) is not balance 12 | counter 5 | sequence 10 | MAC1 16 hex")
	ErrPurseGrant   = errors.New("DE48: subelement 41 (purse load grant) is not balance after 12 | MAC2 16 hex")
	ErrPurseKey     = errors.New("DE48: subelement 42 (purse key) is not 32 lower-case hex")
	errPurseOrder   = errors.New("DE48: purse load subelements 40, 41, 42 out of order or repeated")
)

// Append appends the tag 40 value to dst; ErrPurseRequest when the balance
// is negative or over PurseBalanceMax.
func (r PurseLoadRequest) Append(dst []byte) ([]byte, error) {
	if r.Balance < 0 || r.Balance > PurseBalanceMax {
		return dst, ErrPurseRequest
	}
	dst = appendDigits(dst, uint64(r.Balance), purseBalanceDigits)
	dst = appendDigits(dst, uint64(r.Counter), purseCounterDigits)
	dst = appendDigits(dst, uint64(r.Sequence), purseSequenceDigits)
	return hex.AppendEncode(dst, r.MAC[:]), nil
}

// Encode returns the tag 40 value.
func (r PurseLoadRequest) Encode() (string, error) {
	b, err := r.Append(make([]byte, 0, PurseRequestBytes))
	return string(b), err
}

// ParsePurseLoadRequest reads a tag 40 value.
func ParsePurseLoadRequest(s string) (PurseLoadRequest, error) {
	var r PurseLoadRequest
	if len(s) != PurseRequestBytes {
		return r, ErrPurseRequest
	}
	balance, ok1 := parseDigits(s[:12], PurseBalanceMax)
	counter, ok2 := parseDigits(s[12:17], 0xFFFF)
	sequence, ok3 := parseDigits(s[17:27], 0xFFFF_FFFF)
	if !ok1 || !ok2 || !ok3 || !parseLowerHex(r.MAC[:], s[27:]) {
		return PurseLoadRequest{}, ErrPurseRequest
	}
	r.Balance, r.Counter, r.Sequence = int64(balance), uint16(counter), uint32(sequence)
	return r, nil
}

// Append appends the tag 41 value to dst; ErrPurseGrant when the balance
// is negative or over PurseBalanceMax.
func (g PurseLoadGrant) Append(dst []byte) ([]byte, error) {
	if g.BalanceAfter < 0 || g.BalanceAfter > PurseBalanceMax {
		return dst, ErrPurseGrant
	}
	dst = appendDigits(dst, uint64(g.BalanceAfter), purseBalanceDigits)
	return hex.AppendEncode(dst, g.MAC[:]), nil
}

// Encode returns the tag 41 value.
func (g PurseLoadGrant) Encode() (string, error) {
	b, err := g.Append(make([]byte, 0, PurseGrantBytes))
	return string(b), err
}

// ParsePurseLoadGrant reads a tag 41 value.
func ParsePurseLoadGrant(s string) (PurseLoadGrant, error) {
	var g PurseLoadGrant
	if len(s) != PurseGrantBytes {
		return g, ErrPurseGrant
	}
	balance, ok := parseDigits(s[:12], PurseBalanceMax)
	if !ok || !parseLowerHex(g.MAC[:], s[12:]) {
		return PurseLoadGrant{}, ErrPurseGrant
	}
	g.BalanceAfter = int64(balance)
	return g, nil
}

// Append appends the tag 42 value to dst.
func (k PurseKey) Append(dst []byte) []byte { return hex.AppendEncode(dst, k[:]) }

// ParsePurseKey reads a tag 42 value.
func ParsePurseKey(s string) (PurseKey, error) {
	var k PurseKey
	if len(s) != PurseKeyHexBytes || !parseLowerHex(k[:], s) {
		return PurseKey{}, ErrPurseKey
	}
	return k, nil
}

// Encode returns the DE48 value: the subelements present, in tag order.
func (d PurseLoadData) Encode() (string, error) {
	b, err := d.Append(make([]byte, 0, 3*5+PurseRequestBytes+PurseGrantBytes+PurseKeyHexBytes))
	return string(b), err
}

// Append appends the DE48 value to dst, for a Builder (which copies it).
func (d PurseLoadData) Append(dst []byte) ([]byte, error) {
	var v [PurseRequestBytes]byte // the longest value
	if d.Request != nil {
		b, err := d.Request.Append(v[:0])
		if err != nil {
			return dst, err
		}
		dst = appendSubelement(dst, PurseTagRequest, string(b))
	}
	if d.Grant != nil {
		b, err := d.Grant.Append(v[:0])
		if err != nil {
			return dst, err
		}
		dst = appendSubelement(dst, PurseTagGrant, string(b))
	}
	if d.Key != nil {
		dst = appendSubelement(dst, PurseTagKey, string(d.Key.Append(v[:0])))
	}
	return dst, nil
}

// ParsePurseLoadData reads a DE48 value written by Encode. A known tag
// whose value is malformed, out of order or repeated is an error; unknown
// tags are skipped.
func ParsePurseLoadData(s string) (PurseLoadData, error) {
	var d PurseLoadData
	last := ""
	err := eachSubelement(s, func(tag, value string) error {
		switch tag {
		case PurseTagRequest, PurseTagGrant, PurseTagKey:
		default:
			return nil
		}
		if tag <= last {
			return errPurseOrder
		}
		last = tag
		switch tag {
		case PurseTagRequest:
			r, err := ParsePurseLoadRequest(value)
			if err != nil {
				return err
			}
			d.Request = &r
		case PurseTagGrant:
			g, err := ParsePurseLoadGrant(value)
			if err != nil {
				return err
			}
			d.Grant = &g
		case PurseTagKey:
			k, err := ParsePurseKey(value)
			if err != nil {
				return err
			}
			d.Key = &k
		}
		return nil
	})
	if err != nil {
		return PurseLoadData{}, err
	}
	return d, nil
}

// appendDigits appends v as exactly n digits, zero-padded on the left; the
// caller keeps v below 10^n.
func appendDigits(dst []byte, v uint64, n int) []byte {
	var buf [20]byte
	s := strconv.AppendUint(buf[:0], v, 10)
	for i := len(s); i < n; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// parseDigits reads s, all digits, as a number of at most limit.
func parseDigits(s string, limit uint64) (uint64, bool) {
	if !isDigits(s) {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil && v <= limit
}

// parseLowerHex decodes s, lower-case hex of exactly len(dst) bytes, into
// dst. Upper case is refused: a value has one encoding.
func parseLowerHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	_, err := hex.Decode(dst, []byte(s))
	return err == nil
}
