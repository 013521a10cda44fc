package iso8583

import (
	"errors"
	"slices"
)

// Offsets of the bitmaps in a packed message.
const (
	primaryBitmapAt   = 4 // after the MTI
	secondaryBitmapAt = 12
	bitmapBytes       = 8
)

// WithZeroSecondaryBitmap re-encodes payload (a packed message without its
// length header) the way some terminal libraries send every message: with a
// secondary bitmap present, bit 1 set, even when no field of DE65-128 is.
// A payload that already has a secondary bitmap comes back as a copy.
// Tests and the simulated world use it to speak as those libraries do; the
// network never sends it. A MAC the payload carried no longer verifies, as
// the bitmaps are part of what it covers: sign the result again (mac.Sign).
func WithZeroSecondaryBitmap(payload []byte) ([]byte, error) {
	if len(payload) < secondaryBitmapAt {
		return nil, errors.New("message shorter than an MTI and a bitmap")
	}
	if payload[primaryBitmapAt]&0x80 != 0 {
		return slices.Clone(payload), nil
	}
	out := make([]byte, 0, len(payload)+bitmapBytes)
	out = append(out, payload[:secondaryBitmapAt]...)
	out[primaryBitmapAt] |= 0x80
	out = append(out, make([]byte, bitmapBytes)...)
	return append(out, payload[secondaryBitmapAt:]...), nil
}
