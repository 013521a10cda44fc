package iso8583

import (
	"errors"
	"fmt"

	"strconv"
	"strings"

	moov "github.com/moov-io/iso8583"
	moverrors "github.com/moov-io/iso8583/errors"
)

// FormatError says why a frame is not a valid network message. MTI is set
// when the frame got that far, so the switch can still answer 30 to a request.
type FormatError struct {
	MTI   string
	Field int // 0 when the fault is not in one data element
	Err   error
}

func (e *FormatError) Error() string {
	if e.Field > 0 {
		return fmt.Sprintf("format error in DE%d: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("format error: %v", e.Err)
}

func (e *FormatError) Unwrap() error { return e.Err }

// Unpack parses one frame's payload into a message and checks it against the
// wire contract beyond what moov checks: numeric fields hold digits only, text
// fields printable ASCII, no tertiary bitmap, and no bytes follow the last
// field. A secondary bitmap with no bit set is legal ISO 8583 and some
// terminal libraries always send one: it is accepted, and Pack leaves it
// out. So a frame that passes packs back to the same bytes, except that an
// all-zero secondary bitmap is dropped and bit 1 cleared (the fuzz oracle in
// fuzz_test.go holds us to exactly that).
func Unpack(frame []byte) (*moov.Message, error) {
	msg := NewMessage()
	err := msg.Unpack(frame)
	mti, _ := msg.GetMTI()
	if err != nil {
		fieldID := 0
		var ue *moverrors.UnpackError
		if errors.As(err, &ue) {
			fieldID, _ = strconv.Atoi(ue.FieldID)
		}
		if checkMTI(mti) != nil {
			mti = "" // not an MTI the switch could answer
		}
		return msg, &FormatError{MTI: mti, Field: fieldID, Err: err}
	}
	if err := checkMTI(mti); err != nil {
		return msg, &FormatError{Err: err}
	}
	if err := checkContent(msg, len(frame)); err != nil {
		err.MTI = mti
		return msg, err
	}
	return msg, nil
}

func checkMTI(mti string) error {
	if len(mti) != 4 || !isDigits(mti) {
		return fmt.Errorf("MTI %q is not 4 digits", mti)
	}
	return nil
}

// checkContent validates every present field and that the fields, with MTI
// and bitmap, account for exactly frameLen bytes.
func checkContent(msg *moov.Message, frameLen int) *FormatError {
	bitmap := msg.Bitmap()
	if bitmap.Len() > 128 {
		return &FormatError{Field: FieldBitmap, Err: errors.New("tertiary bitmap is not part of the contract")}
	}
	wire := 4 + bitmap.Len()/8
	for id := 2; id <= bitmap.Len(); id++ {
		if id == 65 || !bitmap.IsSet(id) {
			continue
		}
		def := fieldDefs[id]
		value, err := msg.GetBytes(id)
		if err != nil {
			return &FormatError{Field: id, Err: err}
		}
		if err := def.checkValue(value); err != nil {
			return &FormatError{Field: id, Err: err}
		}
		wire += def.wireLen(len(value))
	}
	if wire != frameLen {
		return &FormatError{Err: fmt.Errorf("%d bytes follow the last field", frameLen-wire)}
	}
	return nil
}

// wireLen is the packed size of a field whose unpadded value is n bytes long.
func (d fieldDef) wireLen(n int) int {
	if d.digits == 0 {
		return d.length
	}
	return d.digits + n
}

func (d fieldDef) checkValue(v []byte) error {
	switch d.kind {
	case kindNumeric:
		for _, c := range v {
			if c < '0' || c > '9' {
				return fmt.Errorf("numeric field holds %q", c)
			}
		}
	case kindText:
		for _, c := range v {
			if c < 0x20 || c > 0x7e {
				return fmt.Errorf("text field holds byte 0x%02x", c)
			}
		}
	}
	return nil
}

// Pack packs msg into a frame payload (without the length header), with a
// secondary bitmap only when a field of DE65-128 is set.
func Pack(msg *moov.Message) ([]byte, error) {
	return msg.Pack()
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// FieldValue returns a field's value as it stands on the wire, less length
// prefix and text padding. A fixed numeric field set short when building
// ("42" for a STAN) reads zero-padded ("000042"), as it will be sent, so the
// value is the same whether the message was built or unpacked. A field that
// is not set reads "".
func FieldValue(msg *moov.Message, id int) string {
	if msg.GetField(id) == nil {
		return ""
	}
	v, err := msg.GetString(id)
	if err != nil {
		return ""
	}
	def, ok := fieldDefs[id]
	if ok && def.kind == kindNumeric && def.digits == 0 && len(v) < def.length {
		v = strings.Repeat("0", def.length-len(v)) + v
	}
	return v
}

// CheckField checks one field's unpadded value against the contract, as
// Unpack does. Answers that echo a request's fields use it to leave out the
// field that made the request malformed.
func CheckField(id int, value []byte) error {
	def, ok := fieldDefs[id]
	if !ok {
		return fmt.Errorf("DE%d is not part of the contract", id)
	}
	if len(value) > def.length {
		return fmt.Errorf("DE%d longer than %d", id, def.length)
	}
	return def.checkValue(value)
}
