package cryptogram

import (
	"errors"
	"fmt"
)

// DE55 is BER-TLV: each data object is a tag, a length and the value.
//
//	tag     1 byte, or 2-3 when the first byte's low five bits are all set
//	        (then every further byte but the last has its top bit set)
//	length  1 byte 0x00-0x7F, or 0x81 then 1 byte 0x80-0xFF
//	value   length bytes
//
// The switch reads five tags and skips any other:
//
//	9F26  8  ARQC
//	9F36  2  ATC, big-endian: the low 16 bits of the phone's counter
//	9F37  4  unpredictable number, from the terminal
//	9F34  3  CVM results
//	9A    3  transaction date YYMMDD, BCD
//
// The parser is strict: each of the five exactly once with its exact
// length, lengths in their shortest form, no padding bytes, nothing left
// over. A DE55 it refuses is answered 30.

// DE55BytesMax is the largest DE55 of the wire contract (LLLVAR b..255).
const DE55BytesMax = 255

// The tags the switch reads.
const (
	TagARQC          = 0x9F26
	TagATC           = 0x9F36
	TagUnpredictable = 0x9F37
	TagCVMResults    = 0x9F34
	TagDate          = 0x9A
)

// tagBytesMax bounds a tag's length; EMV uses at most 3 bytes.
const tagBytesMax = 3

// CVM results (9F34) a phone sends: byte 1 the method performed, byte 2 the
// condition, byte 3 the result (02 successful).
var (
	// CVMDeviceVerified: the cardholder was verified on the phone
	// (fingerprint), successfully.
	CVMDeviceVerified = [3]byte{0x01, 0x00, 0x02}
	// CVMNone: no cardholder verification (the phone was not unlocked);
	// EMV's "no CVM required".
	CVMNone = [3]byte{0x1F, 0x00, 0x02}
)

// cvmMethodDevice is the contract's CVM code for verification on the
// phone: the low six bits of 9F34's first byte (the top two are EMV flags).
const (
	cvmMethodDevice  = 0x01
	cvmResultSuccess = 0x02
)

// ErrDE55 marks every reason ParseDE55 refuses its input.
var ErrDE55 = errors.New("DE55")

// EMV is the chip data of one tap, as DE55 carries it.
type EMV struct {
	ARQC          [ARQCBytes]byte
	ATC           uint16
	Unpredictable [4]byte
	CVM           [3]byte
	Date          string // YYMMDD
}

// DeviceVerified reports CVM results saying the cardholder was verified on
// the phone, successfully.
func (e EMV) DeviceVerified() bool {
	return e.CVM[0]&0x3F == cvmMethodDevice && e.CVM[2] == cvmResultSuccess
}

// fieldBit marks each tag read, to find missing and repeated ones.
var fieldBit = map[uint32]uint8{TagARQC: 1, TagATC: 2, TagUnpredictable: 4, TagCVMResults: 8, TagDate: 16}

const allFields = 1 | 2 | 4 | 8 | 16

var fieldLen = map[uint32]int{TagARQC: ARQCBytes, TagATC: 2, TagUnpredictable: 4, TagCVMResults: 3, TagDate: 3}

// ParseDE55 reads a tap's DE55. Its errors wrap ErrDE55 and name tags and
// offsets, never values.
func ParseDE55(b []byte) (EMV, error) {
	var e EMV
	if len(b) > DE55BytesMax {
		return e, fmt.Errorf("%w: %d bytes, more than %d", ErrDE55, len(b), DE55BytesMax)
	}
	var seen uint8
	for off := 0; off < len(b); {
		tag, value, next, err := readTLV(b, off)
		if err != nil {
			return e, err
		}
		if bit, known := fieldBit[tag]; known {
			if seen&bit != 0 {
				return e, fmt.Errorf("%w: tag %X twice", ErrDE55, tag)
			}
			seen |= bit
			if err := e.set(tag, value); err != nil {
				return e, err
			}
		}
		off = next
	}
	if seen != allFields {
		return e, fmt.Errorf("%w: tag %X missing", ErrDE55, firstMissing(seen))
	}
	return e, nil
}

func firstMissing(seen uint8) uint32 {
	for _, tag := range []uint32{TagARQC, TagATC, TagUnpredictable, TagCVMResults, TagDate} {
		if seen&fieldBit[tag] == 0 {
			return tag
		}
	}
	return 0
}

// set stores one known tag's value.
func (e *EMV) set(tag uint32, v []byte) error {
	if len(v) != fieldLen[tag] {
		return fmt.Errorf("%w: tag %X of %d bytes, want %d", ErrDE55, tag, len(v), fieldLen[tag])
	}
	switch tag {
	case TagARQC:
		copy(e.ARQC[:], v)
	case TagATC:
		e.ATC = uint16(v[0])<<8 | uint16(v[1])
	case TagUnpredictable:
		copy(e.Unpredictable[:], v)
	case TagCVMResults:
		copy(e.CVM[:], v)
	case TagDate:
		d, ok := fromBCD(v)
		if !ok || !validDate(d) {
			return fmt.Errorf("%w: tag 9A is not a BCD date YYMMDD", ErrDE55)
		}
		e.Date = d
	}
	return nil
}

// readTLV reads the data object at off and returns its tag, its value and
// the offset after it.
func readTLV(b []byte, off int) (tag uint32, value []byte, next int, err error) {
	start := off
	first := b[off]
	if first == 0x00 || first == 0xFF {
		return 0, nil, 0, fmt.Errorf("%w: padding byte %02X at offset %d", ErrDE55, first, off)
	}
	tag, off = uint32(first), off+1
	if first&0x1F == 0x1F {
		for {
			if off >= len(b) {
				return 0, nil, 0, fmt.Errorf("%w: tag at offset %d cut short", ErrDE55, start)
			}
			c := b[off]
			if off == start+1 && c == 0x80 {
				return 0, nil, 0, fmt.Errorf("%w: tag at offset %d not in its shortest form", ErrDE55, start)
			}
			tag, off = tag<<8|uint32(c), off+1
			if c&0x80 == 0 {
				break
			}
			if off-start >= tagBytesMax {
				return 0, nil, 0, fmt.Errorf("%w: tag at offset %d longer than %d bytes", ErrDE55, start, tagBytesMax)
			}
		}
	}
	if off >= len(b) {
		return 0, nil, 0, fmt.Errorf("%w: tag %X has no length", ErrDE55, tag)
	}
	n := int(b[off])
	off++
	switch {
	case n == 0x81:
		if off >= len(b) || b[off] < 0x80 {
			return 0, nil, 0, fmt.Errorf("%w: tag %X: length 81 not followed by 80-FF", ErrDE55, tag)
		}
		n, off = int(b[off]), off+1
	case n > 0x7F:
		return 0, nil, 0, fmt.Errorf("%w: tag %X: length form %02X", ErrDE55, tag, n)
	}
	if n > len(b)-off {
		return 0, nil, 0, fmt.Errorf("%w: tag %X: %d bytes of value, %d left", ErrDE55, tag, n, len(b)-off)
	}
	return tag, b[off : off+n], off + n, nil
}

// AppendDE55 appends e as DE55: the five tags in the order of the table
// above, 34 bytes. e.Date must be a YYMMDD date.
func (e EMV) AppendDE55(dst []byte) ([]byte, error) {
	if !validDate(e.Date) {
		return nil, fmt.Errorf("%w: date %q is not YYMMDD", ErrDE55, e.Date)
	}
	dst = append(dst, 0x9F, 0x26, ARQCBytes)
	dst = append(dst, e.ARQC[:]...)
	dst = append(dst, 0x9F, 0x36, 2, byte(e.ATC>>8), byte(e.ATC))
	dst = append(dst, 0x9F, 0x37, 4)
	dst = append(dst, e.Unpredictable[:]...)
	dst = append(dst, 0x9F, 0x34, 3)
	dst = append(dst, e.CVM[:]...)
	dst = append(dst, 0x9A, 3)
	return appendBCD(dst, e.Date), nil
}

// appendBCD packs an even number of ASCII digits two to a byte.
func appendBCD(dst []byte, digits string) []byte {
	for i := 0; i+1 < len(digits); i += 2 {
		dst = append(dst, (digits[i]-'0')<<4|(digits[i+1]-'0'))
	}
	return dst
}

func fromBCD(v []byte) (string, bool) {
	out := make([]byte, 0, 2*len(v))
	for _, c := range v {
		hi, lo := c>>4, c&0x0F
		if hi > 9 || lo > 9 {
			return "", false
		}
		out = append(out, '0'+hi, '0'+lo)
	}
	return string(out), true
}
