package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
)

// Key prefixes, layouts and sizes; the package doc draws them.
const (
	prefixEntry = 'e'
	prefixIndex = 'k'

	dayBytes         = 8
	entryKeyBytes    = 1 + dayBytes + 8
	recordVersion    = 1
	recordFixedEnd   = 1 + 8 + 8 + 8 + 32 + 1 // version, Seq, Time, Amount, digest, flags
	crcBytes         = 4
	pointerVersion   = 1
	pointerBytes     = 1 + dayBytes + 8 + crcBytes
	flagStandIn      = 1 << 0
	flagPurseLoad    = 1 << 1
	purseLoadBytes   = 4 + 2
	fieldLenBytes    = 2
	indexKeyBytesMax = 1 + 8 + 1 + 6 + 1 + 10 // the largest index key validate lets through
)

// castagnoli is CRC-32C, the polynomial with hardware support on amd64 and
// arm64 and the one Pebble uses for its own blocks.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// appendEntryKey appends 'e' | day | Seq.
func appendEntryKey(dst []byte, day string, seq uint64) []byte {
	dst = append(dst, prefixEntry)
	dst = append(dst, day...)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// appendIndexKey appends 'k' | TerminalID | 0 | STAN | 0 | TransmissionTime.
func appendIndexKey(dst []byte, k Key) []byte {
	return appendKeyed(dst, prefixIndex, k)
}

// appendKeyed appends prefix | TerminalID | 0 | STAN | 0 | TransmissionTime.
func appendKeyed(dst []byte, prefix byte, k Key) []byte {
	dst = append(dst, prefix)
	dst = append(dst, k.TerminalID...)
	dst = append(dst, 0)
	dst = append(dst, k.STAN...)
	dst = append(dst, 0)
	return append(dst, k.TransmissionTime...)
}

// dayBounds returns the key range [lower, upper) holding every entry of day.
func dayBounds(day string) (lower, upper []byte) {
	lower = append([]byte{prefixEntry}, day...)
	upper = append([]byte{prefixEntry}, day...)
	upper[len(upper)-1]++ // day is ASCII digits, so the last byte never overflows
	return lower, upper
}

// entryKeyName is how error messages name an entry key: e/<day>/<seq>.
func entryKeyName(k []byte) string {
	if len(k) != entryKeyBytes || k[0] != prefixEntry {
		return fmt.Sprintf("malformed entry key %q", k)
	}
	return fmt.Sprintf("e/%s/%d", k[1:1+dayBytes], binary.BigEndian.Uint64(k[1+dayBytes:]))
}

// indexKeyName is how error messages name an index key: k/<terminal>/<stan>/<time>.
func indexKeyName(k Key) string {
	return fmt.Sprintf("k/%s/%s/%s", k.TerminalID, k.STAN, k.TransmissionTime)
}

// appendRecord appends e's record (see the package doc) with its CRC.
// e must have passed validate and carry its Seq and BusinessDay.
func appendRecord(dst []byte, e *Entry) []byte {
	start := len(dst)
	dst = append(dst, recordVersion)
	dst = binary.BigEndian.AppendUint64(dst, e.Seq)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.Time.UnixNano()))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.Amount))
	dst = append(dst, e.RequestDigest[:]...)
	var flags byte
	if e.StandIn {
		flags |= flagStandIn
	}
	if e.PurseLoad != nil {
		flags |= flagPurseLoad
	}
	dst = append(dst, flags)
	for _, p := range e.stringFields() {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(*p)))
		dst = append(dst, *p...)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(e.PANSealed)))
	dst = append(dst, e.PANSealed...)
	if l := e.PurseLoad; l != nil {
		dst = binary.BigEndian.AppendUint32(dst, l.Sequence)
		dst = binary.BigEndian.AppendUint16(dst, l.AfterCounter)
	}
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// errTruncated is the decoding error for a field that runs past the record.
var errTruncated = errors.New("field runs past the end of the record")

// checkCRC splits v into body and trailing CRC-32C and verifies it.
func checkCRC(v []byte, minBody int) ([]byte, error) {
	if len(v) < minBody+crcBytes {
		return nil, fmt.Errorf("%d bytes, shorter than the minimum %d", len(v), minBody+crcBytes)
	}
	body := v[:len(v)-crcBytes]
	stored := binary.BigEndian.Uint32(v[len(body):])
	if got := crc32.Checksum(body, castagnoli); got != stored {
		return nil, fmt.Errorf("CRC-32C mismatch: stored %08x, computed %08x", stored, got)
	}
	return body, nil
}

// decodeRecord parses and checks a record. Errors say what is wrong but not
// where; the caller adds the key.
func decodeRecord(v []byte) (Entry, error) {
	var e Entry
	body, err := checkCRC(v, recordFixedEnd)
	if err != nil {
		return e, err
	}
	if body[0] != recordVersion {
		return e, fmt.Errorf("unknown record version %d", body[0])
	}
	e.Seq = binary.BigEndian.Uint64(body[1:])
	e.Time = time.Unix(0, int64(binary.BigEndian.Uint64(body[9:]))).UTC()
	e.Amount = iso8583.Amount(int64(binary.BigEndian.Uint64(body[17:])))
	copy(e.RequestDigest[:], body[25:57])
	flags := body[57]
	if flags&^(flagStandIn|flagPurseLoad) != 0 {
		return e, fmt.Errorf("unknown flags %08b", flags)
	}
	e.StandIn = flags&flagStandIn != 0
	// One string conversion backs every string field, so decoding costs a
	// couple of allocations rather than one per field.
	rest := string(body[recordFixedEnd:])
	for _, p := range e.stringFields() {
		if *p, rest, err = cutField(rest); err != nil {
			return e, err
		}
	}
	pan, rest, err := cutField(rest)
	if err != nil {
		return e, err
	}
	if flags&flagPurseLoad != 0 {
		if len(rest) < purseLoadBytes {
			return e, errTruncated
		}
		e.PurseLoad = &PurseLoad{
			Sequence:     binary.BigEndian.Uint32([]byte(rest[:4])),
			AfterCounter: binary.BigEndian.Uint16([]byte(rest[4:6])),
		}
		rest = rest[purseLoadBytes:]
	}
	if rest != "" {
		return e, fmt.Errorf("%d bytes after the last field", len(rest))
	}
	if pan != "" {
		e.PANSealed = []byte(pan)
	}
	return e, checkDecoded(&e)
}

// cutField splits one length-prefixed field off the front of s.
func cutField(s string) (field, rest string, err error) {
	if len(s) < fieldLenBytes {
		return "", "", errTruncated
	}
	n := int(s[0])<<8 | int(s[1])
	if len(s)-fieldLenBytes < n {
		return "", "", errTruncated
	}
	return s[fieldLenBytes : fieldLenBytes+n], s[fieldLenBytes+n:], nil
}

// checkDecoded re-applies the write-time rules to a record read back, so a
// record that was written by a buggy build or altered on disk is caught.
func checkDecoded(e *Entry) error {
	if err := ruleDay.check("BusinessDay", e.BusinessDay); err != nil {
		return err
	}
	return e.validate()
}

// appendPointer appends an index value: version | day | Seq | CRC-32C.
func appendPointer(dst []byte, day string, seq uint64) []byte {
	start := len(dst)
	dst = append(dst, pointerVersion)
	dst = append(dst, day...)
	dst = binary.BigEndian.AppendUint64(dst, seq)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

// decodePointer parses and checks an index value.
func decodePointer(v []byte) (day string, seq uint64, err error) {
	if len(v) != pointerBytes {
		return "", 0, fmt.Errorf("pointer is %d bytes, want %d", len(v), pointerBytes)
	}
	body, err := checkCRC(v, pointerBytes-crcBytes)
	if err != nil {
		return "", 0, err
	}
	if body[0] != pointerVersion {
		return "", 0, fmt.Errorf("unknown pointer version %d", body[0])
	}
	day = string(body[1 : 1+dayBytes])
	if err := ruleDay.check("pointer day", day); err != nil {
		return "", 0, err
	}
	return day, binary.BigEndian.Uint64(body[1+dayBytes:]), nil
}
