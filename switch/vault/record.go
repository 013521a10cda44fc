package vault

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// The record layout is drawn in the package doc; these name its offsets.
const (
	recordFormatV1 = 1

	offFormat      = 0
	offStatus      = 1
	offDomain      = 2
	offCardExpiry  = 3
	offTokenExpiry = 7
	offCreatedSec  = 11
	offCreatedNsec = 19
	offVariable    = 23 // first length-prefixed field

	recordCRCBytes = 4
	// recordBytesMin is a record whose four variable fields are all empty.
	recordBytesMin = offVariable + 4 + recordCRCBytes

	domainContactlessOnly = 1 << 0
	domainKnownBits       = domainContactlessOnly

	deviceIDBytesMax      = 64
	walletAccountBytesMax = 64
	requestorIDBytes      = 11
	panDigitsMin          = 12
	panDigitsMax          = 19
	sealedPANBytesMax     = panDigitsMax + sealOverheadBytes
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

var statusCodes = [...]Status{1: StatusActive, 2: StatusSuspended, 3: StatusDeleted}

func statusCode(s Status) (byte, bool) {
	for c, known := range statusCodes {
		if known == s && s != "" {
			return byte(c), true
		}
	}
	return 0, false
}

// record is a token's stored form with the PAN still sealed. Status changes
// rewrite it without decrypting the PAN.
type record struct {
	status      Status
	domain      Domain
	cardExpiry  string
	tokenExpiry string
	createdAt   time.Time
	deviceID    string
	wallet      string
	requestorID string
	sealedPAN   []byte
}

// recordView is a parsed record whose fields alias the stored bytes, so the
// hot path can read one without a copy per field. It is valid only as long
// as the bytes it was parsed from.
type recordView struct {
	status      Status
	domain      Domain
	cardExpiry  []byte
	tokenExpiry []byte
	createdAt   time.Time
	deviceID    []byte
	wallet      []byte
	requestorID []byte
	sealedPAN   []byte
}

// encode returns the stored form. The caller has validated r; the lengths
// fit in a byte because every field has a maximum far below 256.
func (r *record) encode() []byte {
	code, _ := statusCode(r.status)
	var domain byte
	if r.domain.ContactlessOnly {
		domain |= domainContactlessOnly
	}
	n := recordBytesMin + len(r.deviceID) + len(r.wallet) + len(r.requestorID) + len(r.sealedPAN)
	b := make([]byte, offVariable, n)
	b[offFormat], b[offStatus], b[offDomain] = recordFormatV1, code, domain
	copy(b[offCardExpiry:], r.cardExpiry)
	copy(b[offTokenExpiry:], r.tokenExpiry)
	// Seconds from the Unix epoch plus nanoseconds cover every time.Time,
	// the zero time included, which UnixNano does not.
	binary.BigEndian.PutUint64(b[offCreatedSec:], uint64(r.createdAt.Unix()))
	binary.BigEndian.PutUint32(b[offCreatedNsec:], uint32(r.createdAt.Nanosecond()))
	b = appendField(b, r.deviceID)
	b = appendField(b, r.wallet)
	b = appendField(b, r.requestorID)
	b = appendField(b, r.sealedPAN)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

func appendField[T string | []byte](b []byte, s T) []byte {
	if len(s) > 255 {
		panic("vault: record field longer than 255 bytes passed validation")
	}
	return append(append(b, byte(len(s))), s...)
}

// parseRecord checks a stored record and returns a view of it. The CRC is
// checked first, so a flipped length byte reads as corruption rather than as
// a strange field. Field rules are checked again on read, as they were on
// write, so a record written by a buggy build is caught here.
func parseRecord(b []byte) (recordView, error) {
	var r recordView
	if len(b) < recordBytesMin {
		return r, fmt.Errorf("%d bytes, shorter than the minimum %d", len(b), recordBytesMin)
	}
	body := b[:len(b)-recordCRCBytes]
	if want, got := binary.BigEndian.Uint32(b[len(body):]), crc32.Checksum(body, crcTable); want != got {
		return r, fmt.Errorf("CRC-32C %08x, stored %08x", got, want)
	}
	if body[offFormat] != recordFormatV1 {
		return r, fmt.Errorf("unknown format version %d", body[offFormat])
	}
	if err := r.parseFixed(body); err != nil {
		return r, err
	}
	if err := r.parseVariable(body[offVariable:]); err != nil {
		return r, err
	}
	return r, nil
}

func (r *recordView) parseFixed(body []byte) error {
	c := int(body[offStatus])
	if c == 0 || c >= len(statusCodes) {
		return fmt.Errorf("unknown status code %d", c)
	}
	r.status = statusCodes[c]
	if body[offDomain]&^domainKnownBits != 0 {
		return fmt.Errorf("unknown domain flags %#02x", body[offDomain])
	}
	r.domain.ContactlessOnly = body[offDomain]&domainContactlessOnly != 0
	r.cardExpiry = body[offCardExpiry : offCardExpiry+4]
	r.tokenExpiry = body[offTokenExpiry : offTokenExpiry+4]
	if !validYYMM(string(r.cardExpiry)) || !validYYMM(string(r.tokenExpiry)) {
		return errors.New("an expiry is not YYMM")
	}
	sec := int64(binary.BigEndian.Uint64(body[offCreatedSec:]))
	nsec := binary.BigEndian.Uint32(body[offCreatedNsec:])
	if nsec >= 1e9 {
		return fmt.Errorf("creation nanoseconds %d out of range", nsec)
	}
	r.createdAt = time.Unix(sec, int64(nsec)).UTC()
	return nil
}

func (r *recordView) parseVariable(b []byte) error {
	fields := [...]struct {
		dst *[]byte
		max int
	}{
		{&r.deviceID, deviceIDBytesMax},
		{&r.wallet, walletAccountBytesMax},
		{&r.requestorID, requestorIDBytes},
		{&r.sealedPAN, sealedPANBytesMax},
	}
	for i, f := range fields {
		if len(b) < 1 || int(b[0]) > len(b)-1 {
			return fmt.Errorf("variable field %d overruns the record", i)
		}
		n := int(b[0])
		if n > f.max {
			return fmt.Errorf("variable field %d is %d bytes, over its %d", i, n, f.max)
		}
		*f.dst, b = b[1:1+n], b[1+n:]
	}
	if len(b) != 0 {
		return fmt.Errorf("%d bytes after the last field", len(b))
	}
	return nil
}

// owned copies the view out of the stored bytes.
func (r *recordView) owned() record {
	return record{
		status:      r.status,
		domain:      r.domain,
		cardExpiry:  string(r.cardExpiry),
		tokenExpiry: string(r.tokenExpiry),
		createdAt:   r.createdAt,
		deviceID:    string(r.deviceID),
		wallet:      string(r.wallet),
		requestorID: string(r.requestorID),
		sealedPAN:   append([]byte(nil), r.sealedPAN...),
	}
}

func validYYMM(s string) bool {
	if len(s) != 4 || !allDigits(s) {
		return false
	}
	month := (s[2]-'0')*10 + s[3] - '0'
	return month >= 1 && month <= 12
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
