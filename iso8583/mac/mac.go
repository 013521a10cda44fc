// Package mac binds a message of the wire contract to one terminal: its
// last data element is a message authentication code over every byte
// before it, under a key only that terminal (and its acquirer's host, and
// the switch) can compute. docs/wire.md section 11 is the specification and
// holds a test vector that mac_test.go reads back.
//
//	MAC field   the last field, 8 raw bytes: DE128 when its bit is set,
//	            else DE64 (never before a field of DE65-127); an
//	            all-zero secondary bitmap changes nothing (DE64)
//	MAC         first 8 bytes of HMAC-SHA256(terminal key,
//	            MTI | bitmap(s) | every field before the MAC field)
//	terminal    HMAC-SHA256(acquirer key, "tapswitch terminal key v1|" + DE41)
//	key
//
// The package works on raw frame payloads (without the 2-byte length
// header) and knows nothing of the codec: the bitmaps say where the MAC
// field is, and a message the codec accepted ends with its last field, so
// the MAC is the payload's last 8 bytes. Keeping it apart from the codec
// lets a faster codec replace moov without touching the security check.
//
// Why a MAC per message and not TLS per connection: card networks bind each
// message to a terminal this way (CUP's MAC in DE128, ANSI X9.19); it
// survives any TCP load balancer in front of the switch; it authenticates
// every message's DE41, where a connection certificate would only say which
// acquirer opened the connection; and it costs one HMAC (about a
// microsecond) per message.
package mac

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
)

// Size is the length of a MAC on the wire.
const Size = 8

// KeySize is the length of acquirer and terminal keys.
const KeySize = 32

// Data element numbers of the two MAC fields.
const (
	FieldPrimary   = 64
	FieldSecondary = 128
)

// terminalKeyLabel separates terminal key derivation from any other use of
// an acquirer key; v1 lets a later derivation live beside this one.
const terminalKeyLabel = "tapswitch terminal key v1|"

// mtiBytes and bitmapBytes are the fixed head of every message.
const (
	mtiBytes    = 4
	bitmapBytes = 8
)

// Errors of Verify and Sign. ErrMissing covers a message with no MAC field,
// or with a MAC field that is not the last (DE64 before a field of
// DE65-128).
var (
	ErrMissing  = errors.New("mac: message carries no MAC in its last field")
	ErrMismatch = errors.New("mac: MAC does not verify")
	ErrShort    = errors.New("mac: message too short to hold a MAC")
	ErrKey      = errors.New("mac: key must be 32 bytes")
)

// Field reports which MAC field a message carries (64 or 128) and whether
// its bitmaps announce it as the last field. The MAC is the last field:
// DE128 when bit 128 is set (and bit 64 is not); otherwise DE64, when no
// field of DE65-127 follows it. A secondary bitmap with no bit set, which
// some terminal libraries always send, changes nothing: such a message
// carries its MAC in DE64, computed over both bitmaps as sent. payload is
// the message without its length header.
func Field(payload []byte) (field int, present bool, err error) {
	if len(payload) < mtiBytes+bitmapBytes {
		return 0, false, ErrShort
	}
	primary := payload[mtiBytes : mtiBytes+bitmapBytes]
	macPrimary := primary[7]&0x01 != 0
	if primary[0]&0x80 == 0 { // bit 1 clear: no secondary bitmap
		return FieldPrimary, macPrimary, nil
	}
	if len(payload) < mtiBytes+2*bitmapBytes {
		return 0, false, ErrShort
	}
	secondary := payload[mtiBytes+bitmapBytes : mtiBytes+2*bitmapBytes]
	if secondary[7]&0x01 != 0 { // DE128: the last field, unless DE64 is there too
		return FieldSecondary, !macPrimary, nil
	}
	for _, b := range secondary {
		if b != 0 { // a field of DE65-127 would follow DE64
			return FieldSecondary, false, nil
		}
	}
	return FieldPrimary, macPrimary, nil
}

// Sum is the MAC of data (the message up to its MAC field) under key.
func Sum(key, data []byte) [Size]byte {
	var out [Size]byte
	full := HMACSHA256(key, data)
	copy(out[:], full[:])
	return out
}

// sumStackBytes bounds the messages Sum MACs without allocating: every
// message of the hot path (a request with its EMV data is some 400 bytes).
// A longer one goes through crypto/hmac.
const sumStackBytes = 2048

// HMACSHA256 is HMAC-SHA256 (RFC 2104) computed in buffers on the stack
// for a key of at most one block and data of at most sumStackBytes (longer
// ones go through crypto/hmac): crypto/hmac allocates its two hash states
// on every call, a dozen allocations per MAC on the switch's hot path.
// Every HMAC of an authorization uses it: the message MACs here, the
// session key and ARQC of switch/cryptogram. TestSumIsHMAC holds it to
// crypto/hmac.
func HMACSHA256(key, data []byte) [sha256.Size]byte {
	if len(key) > sha256.BlockSize || len(data) > sumStackBytes {
		// Copies, so that key and data do not escape on the stack path
		// (crypto/hmac's interface calls would make every caller's
		// buffers heap ones).
		var out [sha256.Size]byte
		h := hmac.New(sha256.New, bytes.Clone(key))
		h.Write(bytes.Clone(data))
		copy(out[:], h.Sum(nil))
		return out
	}
	var inner [sha256.BlockSize + sumStackBytes]byte
	for i := range sha256.BlockSize {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		inner[i] = k ^ 0x36
	}
	n := sha256.BlockSize + copy(inner[sha256.BlockSize:], data)
	innerSum := sha256.Sum256(inner[:n])
	var outer [sha256.BlockSize + sha256.Size]byte
	for i := range sha256.BlockSize {
		outer[i] = inner[i] ^ 0x36 ^ 0x5c
	}
	copy(outer[sha256.BlockSize:], innerSum[:])
	return sha256.Sum256(outer[:])
}

// Verify checks the MAC that ends payload. The comparison is in constant
// time.
func Verify(key, payload []byte) error {
	n, err := covered(key, payload)
	if err != nil {
		return err
	}
	want := Sum(key, payload[:n])
	if !hmac.Equal(want[:], payload[n:]) {
		return ErrMismatch
	}
	return nil
}

// Sign writes the MAC into the last 8 bytes of payload, which must already
// announce its MAC field (packed with 8 placeholder bytes there).
func Sign(key, payload []byte) error {
	n, err := covered(key, payload)
	if err != nil {
		return err
	}
	sum := Sum(key, payload[:n])
	copy(payload[n:], sum[:])
	return nil
}

// covered checks key and that payload ends in its MAC field, and returns
// how many bytes of payload the MAC covers: all but the last 8.
func covered(key, payload []byte) (int, error) {
	if len(key) != KeySize {
		return 0, ErrKey
	}
	_, present, err := Field(payload)
	if err != nil {
		return 0, err
	}
	if !present {
		return 0, ErrMissing
	}
	n := len(payload) - Size
	if n < mtiBytes+bitmapBytes {
		return 0, ErrShort
	}
	return n, nil
}

// TerminalKey derives the key of terminal terminalID (DE41 without its
// padding) from its acquirer's key.
func TerminalKey(acquirerKey []byte, terminalID string) []byte {
	h := hmac.New(sha256.New, acquirerKey)
	h.Write([]byte(terminalKeyLabel))
	h.Write([]byte(terminalID))
	return h.Sum(nil)
}
