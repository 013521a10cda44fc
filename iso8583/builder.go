package iso8583

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/tapswitch/tapswitch/iso8583/mac"
)

// Builder packs one message at a time into a caller's buffer without
// allocating: values are copied into the Builder's own reused store as
// they are set, in any order, and packed in field order by Append. It
// packs what Pack packs for the same fields, byte for byte: fixed numeric
// values zero-padded on the left, fixed text padded with spaces, LLVAR and
// LLLVAR with their ASCII length, a secondary bitmap only when a field of
// DE65-128 is set (so never an all-zero one). Unlike Pack it also refuses
// a value Unpack would refuse (a letter in a numeric field, a control byte
// in a text field): what a Builder packs, every reader of the contract
// accepts.
//
// Errors stick: the first bad Set is kept and reported by Append, so a
// message is built without a check after every field. A Builder is reused
// after Reset and is not safe for concurrent use.
type Builder struct {
	mti     [4]byte
	present presence
	at      [fieldIDMax + 1]span // into data
	data    []byte
	err     error
}

// Reset starts a new message of type mti, dropping every field and error.
func (b *Builder) Reset(mti string) {
	b.present = presence{}
	b.data = b.data[:0]
	b.err = nil
	if len(mti) != 4 || !isDigits(mti) {
		b.err = &FormatError{Err: fmt.Errorf("MTI %q is not 4 digits", mti)}
		return
	}
	copy(b.mti[:], mti)
}

// MTI is the message type of the message being built.
func (b *Builder) MTI() string { return internMTI(b.mti[:]) }

// Set sets data element id to v (a fixed numeric value may be short: it is
// zero-padded when packed).
func (b *Builder) Set(id int, v string) {
	if b.check(id, len(v)) {
		start := len(b.data)
		b.data = append(b.data, v...)
		b.store(id, start)
	}
}

// SetBytes sets data element id to a copy of v.
func (b *Builder) SetBytes(id int, v []byte) {
	if b.check(id, len(v)) {
		start := len(b.data)
		b.data = append(b.data, v...)
		b.store(id, start)
	}
}

// SetUint sets a fixed numeric data element to n in decimal, zero-padded
// to the field's length (an amount in DE4, a STAN in DE11).
func (b *Builder) SetUint(id int, n uint64) {
	if !defined(id) || fieldTable[id].kind != kindNumeric || fieldTable[id].digits != 0 {
		b.fail(id, errors.New("not a fixed numeric field"))
		return
	}
	d := fieldTable[id]
	start := len(b.data)
	for range d.length {
		b.data = append(b.data, '0')
	}
	for i := len(b.data) - 1; i >= start; i-- {
		b.data[i] = byte('0' + n%10)
		n /= 10
	}
	if n != 0 {
		b.data = b.data[:start]
		b.fail(id, fmt.Errorf("number longer than %d digits", d.length))
		return
	}
	b.present.set(id)
	b.at[id] = span{int32(start), int32(len(b.data))}
}

// Unset removes data element id.
func (b *Builder) Unset(id int) {
	if defined(id) {
		b.present.clear(id)
	}
}

// Has reports whether data element id is set.
func (b *Builder) Has(id int) bool { return defined(id) && b.present.has(id) }

// Value is the value set for id as given (before padding), nil when unset.
func (b *Builder) Value(id int) []byte {
	if !b.Has(id) {
		return nil
	}
	s := b.at[id]
	return b.data[s.start:s.end:s.end]
}

// check reports whether a value of n bytes may be set in id, keeping the
// first error when not. The content is checked in store, once copied.
func (b *Builder) check(id, n int) bool {
	if b.err != nil {
		return false
	}
	if !defined(id) {
		b.fail(id, fmt.Errorf("DE%d is not part of the contract", id))
		return false
	}
	d := fieldTable[id]
	switch {
	case d.kind == kindBinary && d.digits == 0 && n != d.length:
		b.fail(id, fmt.Errorf("%d bytes, want %d", n, d.length))
		return false
	case n > d.length:
		b.fail(id, fmt.Errorf("%d bytes, longer than %d", n, d.length))
		return false
	}
	return true
}

// store checks the value just appended at start and records it.
func (b *Builder) store(id, start int) {
	v := b.data[start:]
	if err := fieldTable[id].checkValue(v); err != nil {
		b.data = b.data[:start]
		b.fail(id, err)
		return
	}
	b.present.set(id)
	b.at[id] = span{int32(start), int32(len(b.data))}
}

func (b *Builder) fail(id int, err error) {
	if b.err == nil {
		b.err = &FormatError{MTI: string(b.mti[:]), Field: id, Err: err}
	}
}

// Err is the first error of a Set since Reset, nil when none.
func (b *Builder) Err() error { return b.err }

// Append appends the packed message (no length header) to dst.
func (b *Builder) Append(dst []byte) ([]byte, error) {
	if b.err != nil {
		return dst, b.err
	}
	dst = append(dst, b.mti[:]...)
	words := b.present
	if words[1] != 0 {
		words[0] |= presenceBit(1)
	}
	dst = binary.BigEndian.AppendUint64(dst, words[0])
	if words[1] != 0 {
		dst = binary.BigEndian.AppendUint64(dst, words[1])
	}
	for id := range b.present.ids() {
		dst = b.appendField(dst, id)
	}
	return dst, nil
}

func (b *Builder) appendField(dst []byte, id int) []byte {
	d := &fieldTable[id]
	v := b.Value(id)
	switch {
	case d.digits == 2:
		dst = append(dst, byte('0'+len(v)/10), byte('0'+len(v)%10))
	case d.digits == 3:
		dst = append(dst, byte('0'+len(v)/100), byte('0'+len(v)/10%10), byte('0'+len(v)%10))
	case d.kind == kindNumeric:
		for range d.length - len(v) {
			dst = append(dst, '0')
		}
	}
	dst = append(dst, v...)
	if d.digits == 0 && d.kind == kindText {
		for range d.length - len(v) {
			dst = append(dst, ' ')
		}
	}
	return dst
}

// macField is the MAC field of the message being built: DE128 when any of
// DE65-127 is set, else DE64 (as MACField says of a moov message).
func (b *Builder) macField() int {
	p := b.present
	p.clear(mac.FieldSecondary)
	if p[1] != 0 {
		return mac.FieldSecondary
	}
	return mac.FieldPrimary
}

var macPlaceholder [mac.Size]byte

// AppendSigned appends the packed message with its MAC under key as its
// last field (docs/wire.md section 11), as PackSigned does. Any MAC field
// set before is replaced.
func (b *Builder) AppendSigned(dst, key []byte) ([]byte, error) {
	b.Unset(mac.FieldPrimary)
	b.Unset(mac.FieldSecondary)
	b.SetBytes(b.macField(), macPlaceholder[:])
	start := len(dst)
	out, err := b.Append(dst)
	if err != nil {
		return dst, err
	}
	if err := mac.Sign(key, out[start:]); err != nil {
		return dst, fmt.Errorf("signing: %w", err)
	}
	return out, nil
}

// AppendFrame appends the message with its 2-byte length header, signed
// under key unless key is nil, ready to be written.
func (b *Builder) AppendFrame(dst, key []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, 0, 0)
	var err error
	if key == nil {
		dst, err = b.Append(dst)
	} else {
		dst, err = b.AppendSigned(dst, key)
	}
	n := len(dst) - start - frameHeaderBytes
	switch {
	case err != nil:
		return dst[:start], err
	case n > 65535:
		return dst[:start], fmt.Errorf("payload of %d bytes cannot be framed", n)
	}
	binary.BigEndian.PutUint16(dst[start:], uint16(n))
	return dst, nil
}
