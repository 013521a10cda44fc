package iso8583

import (
	"errors"
	"fmt"
	"iter"
	"math/bits"
)

// fieldIDMax is the highest data element of the contract: DE128, the last
// bit of the secondary bitmap.
const fieldIDMax = 128

// fieldTable is fieldDefs indexed by data element number, for the codec in
// this file and in builder.go. It is derived from fieldDefs, never written
// by hand, so the moov spec, the documentation table and the fast codec
// read one definition. A zero entry (length 0) is a data element the
// contract does not define.
var fieldTable = func() (t [fieldIDMax + 1]fieldDef) {
	for id, d := range fieldDefs {
		if id < 2 || id > fieldIDMax || id == 65 || d.length <= 0 {
			panic(fmt.Sprintf("fieldDefs: DE%d cannot be a data element", id))
		}
		t[id] = d
	}
	return t
}()

// defined reports whether id is a data element of the contract.
func defined(id int) bool { return id > 1 && id <= fieldIDMax && fieldTable[id].length > 0 }

// presence is a set of data elements 1..128 laid out as the bitmaps are on
// the wire, read as big-endian words: DE1 is the top bit of word 0, DE65
// the top bit of word 1.
type presence [2]uint64

func presenceBit(id int) uint64 { return 1 << (63 - (id-1)&63) }

func (p *presence) set(id int)   { p[(id-1)>>6] |= presenceBit(id) }
func (p *presence) clear(id int) { p[(id-1)>>6] &^= presenceBit(id) }
func (p presence) has(id int) bool {
	return id >= 1 && id <= fieldIDMax && p[(id-1)>>6]&presenceBit(id) != 0
}

// span is where one value lies in a buffer: [start, end).
type span struct{ start, end int32 }

// Fields is a frame payload parsed in place: the value of each data element
// is a slice of the payload, so parsing copies nothing and allocates
// nothing. It is exactly as strict as Unpack, and refuses what Unpack
// refuses with a *FormatError of the same MTI and Field (FuzzFastAgreesWithMoov
// holds it to that); the error's text is its own. A caller that must log
// moov's words (the terminal session does, so its log line stays the same)
// unpacks a refused frame again with Unpack: refusals are rare and may
// cost.
//
// The values alias the payload: they are valid until the payload's buffer
// is reused (a FrameReader's next frame). A Fields is reused the same way,
// one per reader, and is not safe for concurrent use.
type Fields struct {
	payload   []byte
	present   presence
	at        [fieldIDMax + 1]span
	secondary bool // a secondary bitmap was on the wire, all zero or not
}

// Parse reads payload, a frame without its length header. On error the
// Fields holds nothing.
func (f *Fields) Parse(payload []byte) error {
	f.payload = nil
	f.present = presence{}
	f.secondary = false
	f.payload = payload
	if err := f.parse(payload); err != nil {
		f.payload = nil
		f.present = presence{}
		return err
	}
	return nil
}

// parse follows the order of Unpack's checks, so that a payload with two
// faults is refused for the same one: moov's own decoding first (MTI, the
// bitmaps, each field in order: lengths and ASCII), then the MTI's digits,
// the tertiary bitmap, each field's content in order, and last the bytes
// after the last field.
func (f *Fields) parse(p []byte) error {
	if len(p) < 4 {
		return &FormatError{Err: fmt.Errorf("MTI: %d bytes", len(p))}
	}
	if !isASCII(p[:4]) {
		return &FormatError{Err: errors.New("MTI is not ASCII")}
	}
	off, words, err := f.bitmaps(p)
	if err != nil {
		return err
	}
	off, badContent, err := f.values(p, off, words)
	if err != nil {
		return err
	}
	if !isDigitBytes(p[:4]) {
		return &FormatError{Err: fmt.Errorf("MTI %q is not 4 digits", p[:4])}
	}
	if words > 2 {
		return &FormatError{MTI: string(p[:4]), Field: FieldBitmap, Err: errors.New("tertiary bitmap is not part of the contract")}
	}
	if badContent != 0 {
		return &FormatError{MTI: string(p[:4]), Field: badContent, Err: fieldTable[badContent].checkValue(f.value(badContent))}
	}
	if off != len(p) {
		return &FormatError{MTI: string(p[:4]), Err: fmt.Errorf("%d bytes follow the last field", len(p)-off)}
	}
	return nil
}

// bitmaps reads the bitmaps after the MTI as moov does: one more whenever
// the first bit of the last is set. The first two become f.present; a
// third or later one is only counted (words), to be refused after the
// fields, in Unpack's order. Its bits name fields beyond DE128, refused
// in values.
func (f *Fields) bitmaps(p []byte) (off, words int, err error) {
	off = primaryBitmapAt
	for {
		if len(p)-off < bitmapBytes {
			return 0, 0, f.fault(p, FieldBitmap, fmt.Errorf("bitmap %d: %d bytes left", words+1, len(p)-off))
		}
		if words < 2 {
			f.present[words] = be64(p[off:])
		}
		words++
		off += bitmapBytes
		if p[off-bitmapBytes]&0x80 == 0 {
			break
		}
	}
	f.secondary = words > 1
	return off, words, nil
}

// values reads each field the bitmaps announce, in order, checking what
// moov's decoding checks: the field is defined, its length prefix is
// digits within the maximum, its bytes are there and, unless binary,
// ASCII. Text padding is stripped as moov strips it. The content check
// (digits, printable text) is made in the same pass over the bytes, but
// the first field failing it is only returned (badContent), for parse to
// refuse after every field has decoded, in Unpack's order.
func (f *Fields) values(p []byte, off, words int) (end, badContent int, err error) {
	for id := range f.present.ids() {
		if id == 1 || id == 65 {
			continue // bitmap presence bits
		}
		if !defined(id) {
			return 0, 0, f.fault(p, id, fmt.Errorf("DE%d is not defined in the spec", id))
		}
		d := &fieldTable[id]
		n := d.length
		if d.digits > 0 {
			if len(p)-off < d.digits {
				return 0, 0, f.fault(p, id, fmt.Errorf("need %d length digits, have %d bytes", d.digits, len(p)-off))
			}
			n = 0
			for _, c := range p[off : off+d.digits] {
				if c < '0' || c > '9' {
					return 0, 0, f.fault(p, id, fmt.Errorf("length prefix %q is not %d digits", p[off:off+d.digits], d.digits))
				}
				n = n*10 + int(c-'0')
			}
			if n > d.length {
				return 0, 0, f.fault(p, id, fmt.Errorf("field length %d is larger than maximum %d", n, d.length))
			}
			off += d.digits
		}
		if len(p)-off < n {
			return 0, 0, f.fault(p, id, fmt.Errorf("need %d bytes, have %d", n, len(p)-off))
		}
		if d.kind != kindBinary {
			cls := classOf(p[off : off+n])
			if cls&classASCII == 0 {
				return 0, 0, f.fault(p, id, errors.New("byte outside ASCII"))
			}
			if cls&d.kind.class() == 0 && badContent == 0 {
				badContent = id
			}
		}
		end := off + n
		if d.kind == kindText && d.digits == 0 {
			for end > off && p[end-1] == ' ' {
				end--
			}
		}
		f.at[id] = span{int32(off), int32(end)}
		off += n
	}
	if words > 2 {
		// Bits of a third bitmap and beyond: moov reads them as fields
		// 130 and up, none of which the spec defines.
		for w := 2; w < words; w++ {
			bm := be64(p[primaryBitmapAt+w*bitmapBytes:]) &^ (1 << 63)
			if bm != 0 {
				for b := 1; b < 64; b++ {
					if bm&(1<<(63-b)) != 0 {
						id := w*64 + b + 1
						return 0, 0, f.fault(p, id, fmt.Errorf("DE%d is not defined in the spec", id))
					}
				}
			}
		}
	}
	return off, badContent, nil
}

// Byte classes, for checking a field's bytes in one pass: a field's class
// is what all its bytes are.
const (
	classASCII     uint8 = 1 << iota // < 0x80, what moov's decoding wants
	classPrintable                   // 0x20-0x7e, text fields
	classDigit                       // '0'-'9', numeric fields
)

var byteClass = func() (t [256]uint8) {
	for c := range 256 {
		if c < 0x80 {
			t[c] |= classASCII
		}
		if c >= 0x20 && c <= 0x7e {
			t[c] |= classPrintable
		}
		if c >= '0' && c <= '9' {
			t[c] |= classDigit
		}
	}
	return t
}()

func classOf(b []byte) uint8 {
	acc := classASCII | classPrintable | classDigit
	for _, c := range b {
		acc &= byteClass[c]
	}
	return acc
}

// class is the byte class checkValue wants of a kind's content.
func (k kind) class() uint8 {
	switch k {
	case kindNumeric:
		return classDigit
	case kindText:
		return classPrintable
	}
	return classASCII | classPrintable | classDigit
}

// fault is a FormatError in moov's decoding: MTI as Unpack reports it
// (only when it is 4 digits), with the field moov names.
func (f *Fields) fault(p []byte, id int, err error) *FormatError {
	fe := &FormatError{Field: id, Err: err}
	if isDigitBytes(p[:4]) {
		fe.MTI = string(p[:4])
	}
	return fe
}

// ids yields the data elements of p in ascending order, presence bits
// (1 and 65) included.
func (p *presence) ids() iter.Seq[int] {
	return func(yield func(int) bool) {
		for w := range 2 {
			bm := p[w]
			for bm != 0 {
				b := bits.LeadingZeros64(bm)
				if !yield(w*64 + b + 1) {
					return
				}
				bm &^= 1 << (63 - b)
			}
		}
	}
}

// CopyTo makes dst what Parse of a copy of f's payload would make it,
// without parsing again: the payload is copied into buf (reused, grown as
// needed) and the parse result with it. It returns the buffer dst now
// aliases, for the caller to hand back next time. A link's reader uses it
// to hand an answer to the request that waits for it, whose Fields must
// outlive the reader's buffer.
func (f *Fields) CopyTo(dst *Fields, buf []byte) []byte {
	*dst = *f
	dst.payload = append(buf[:0], f.payload...)
	return dst.payload
}

func (f *Fields) value(id int) []byte {
	s := f.at[id]
	return f.payload[s.start:s.end:s.end]
}

// MTI returns the message type indicator. The MTIs of the contract come
// back as their constants, without an allocation; any other MTI is a new
// string.
func (f *Fields) MTI() string {
	if len(f.payload) < 4 {
		return ""
	}
	return internMTI(f.payload[:4])
}

// Has reports whether data element id is present (1 and 65, the bitmap
// bits, never are).
func (f *Fields) Has(id int) bool {
	return id != 1 && id != 65 && f.present.has(id)
}

// Bytes returns the value of data element id as Unpack would give it (less
// length prefix and text padding), aliasing the payload; nil when absent.
func (f *Fields) Bytes(id int) []byte {
	if !f.Has(id) {
		return nil
	}
	s := f.at[id]
	return f.payload[s.start:s.end:s.end]
}

// Span returns where the value of id lies in the payload, so a caller that
// copies the payload once into a string can take every field from it
// without further copies. ok is false when id is absent.
func (f *Fields) Span(id int) (start, end int, ok bool) {
	if !f.Has(id) {
		return 0, 0, false
	}
	s := f.at[id]
	return int(s.start), int(s.end), true
}

// Uint reads numeric data element id (at most 19 digits, as an amount in
// DE4) as a number; ok is false when it is absent, empty or too long.
func (f *Fields) Uint(id int) (n uint64, ok bool) {
	v := f.Bytes(id)
	if len(v) == 0 || len(v) > 19 || !isDigitBytes(v) {
		return 0, false
	}
	for _, c := range v {
		n = n*10 + uint64(c-'0')
	}
	return n, true
}

// Payload is the payload last parsed.
func (f *Fields) Payload() []byte { return f.payload }

// SecondaryBitmap reports whether the payload carried a secondary bitmap,
// all zero or not.
func (f *Fields) SecondaryBitmap() bool { return f.secondary }

// All yields every present data element and its value, in ascending order.
func (f *Fields) All() iter.Seq2[int, []byte] {
	return func(yield func(int, []byte) bool) {
		for id := range f.present.ids() {
			if id == 1 || id == 65 {
				continue
			}
			if !yield(id, f.value(id)) {
				return
			}
		}
	}
}

// knownMTIs are the MTIs Fields.MTI returns without allocating.
var knownMTIs = []string{
	MTIAuthRequest, MTIAuthResponse, MTIFinancialRequest, MTIFinancialResponse,
	MTIAdvice, MTIAdviceResponse, MTIReversalRequest, MTIReversalResponse,
	MTIReversalAdvice, MTIReversalAdviceResp, MTINetworkMgmtRequest, MTINetworkMgmtResponse,
}

func internMTI(b []byte) string {
	for _, m := range knownMTIs {
		if string(b) == m {
			return m
		}
	}
	return string(b)
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c > 127 {
			return false
		}
	}
	return true
}

func isDigitBytes(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

func be64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}
