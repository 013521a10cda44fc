package cryptogram

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// WindowSize is how far below the highest accepted counter a counter not
// yet seen is still accepted: taps of one token may overtake each other by
// this much on their way to the switch (docs/cryptogram.md says why 1024).
const WindowSize = 64 * windowWords

// windowWords is the bitmap's length in 64-bit words.
const windowWords = 16

// SeenBytes is the length of a Window's bitmap as AppendSeen writes it.
const SeenBytes = 8 * windowWords

// aheadMax is how far above the highest accepted counter a counter may be
// for Resolve to recover it from its low 16 bits.
const aheadMax = math.MaxInt16

// Errors of Resolve and Check; the switch answers each 59.
var (
	ErrCounterUnknown = errors.New("cryptogram: ATC too far from the counters accepted to resolve")
	ErrReplay         = errors.New("cryptogram: counter already accepted")
	ErrTooOld         = errors.New("cryptogram: counter older than the window")
)

// Window is what the switch keeps of one token's counters: the highest it
// accepted, and which of the WindowSize below it it accepted too (bit i of
// the bitmap, counting from bit 0 of word 0, is counter Last-1-i). The zero
// Window is a token never tapped: a phone's counter starts at 0 and counts
// up before each tap, so 0 itself is never accepted.
type Window struct {
	Last uint32
	seen [windowWords]uint64
}

// Resolve recovers the full counter from 9F36: the counter with these low
// 16 bits nearest to Last, between Last-32768 and Last+32767. It fails when
// that counter is below 1 or above the counter's range.
func (w Window) Resolve(atc uint16) (uint32, error) {
	delta := int64(int16(atc - uint16(w.Last)))
	c := int64(w.Last) + delta
	if c < 1 || c > math.MaxUint32 || delta > aheadMax {
		return 0, ErrCounterUnknown
	}
	return uint32(c), nil
}

// Check says whether counter may be accepted: nil when it is above Last, or
// within the window below and not seen.
func (w Window) Check(counter uint32) error {
	switch {
	case counter > w.Last:
		return nil
	case counter == w.Last:
		return ErrReplay
	case w.Last-counter > WindowSize:
		return ErrTooOld
	}
	i := w.Last - counter - 1
	if w.seen[i/64]&(1<<(i%64)) != 0 {
		return ErrReplay
	}
	return nil
}

// Accept returns the window with counter accepted. counter must have passed
// Check.
func (w Window) Accept(counter uint32) Window {
	if counter <= w.Last {
		i := w.Last - counter - 1
		w.seen[i/64] |= 1 << (i % 64)
		return w
	}
	shift := counter - w.Last
	w.seen = shifted(w.seen, shift)
	if shift <= WindowSize && w.Last != 0 {
		i := shift - 1 // the old Last, now below the new one
		w.seen[i/64] |= 1 << (i % 64)
	}
	w.Last = counter
	return w
}

// shifted moves every bit s places towards older counters; bits pushed
// past the window are dropped.
func shifted(seen [windowWords]uint64, s uint32) [windowWords]uint64 {
	var out [windowWords]uint64
	if s >= WindowSize {
		return out
	}
	words, bits := int(s/64), s%64
	for i := windowWords - 1; i >= words; i-- {
		out[i] = seen[i-words] << bits
		if bits > 0 && i-words-1 >= 0 {
			out[i] |= seen[i-words-1] >> (64 - bits)
		}
	}
	return out
}

// Seen reports whether counter is one the window holds as accepted: Last,
// or one of the WindowSize below it with its bit set.
func (w Window) Seen(counter uint32) bool {
	if counter == w.Last {
		return w.Last != 0
	}
	if counter > w.Last || w.Last-counter > WindowSize {
		return false
	}
	i := w.Last - counter - 1
	return w.seen[i/64]&(1<<(i%64)) != 0
}

// AppendSeen appends the bitmap, SeenBytes long: word 0 first, each word
// big-endian.
func (w Window) AppendSeen(dst []byte) []byte {
	for _, word := range w.seen {
		dst = binary.BigEndian.AppendUint64(dst, word)
	}
	return dst
}

// WindowOf rebuilds a Window from Last and a bitmap AppendSeen wrote.
func WindowOf(last uint32, seen []byte) (Window, error) {
	w := Window{Last: last}
	if len(seen) != SeenBytes {
		return w, fmt.Errorf("cryptogram: counter bitmap of %d bytes, want %d", len(seen), SeenBytes)
	}
	for i := range w.seen {
		w.seen[i] = binary.BigEndian.Uint64(seen[8*i:])
	}
	return w, nil
}
