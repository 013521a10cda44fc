package wallet

import (
	"encoding/hex"
	"fmt"
	"sync/atomic"
)

// tokenKeyBytes is the length of a token's cryptogram key.
const tokenKeyBytes = 16

// TokenKey decodes the card's cryptogram key; nil, nil for a card without
// one. Its errors do not quote the key.
func (c Card) TokenKey() ([]byte, error) {
	if c.Key == "" {
		return nil, nil
	}
	k, err := hex.DecodeString(c.Key)
	if err != nil || len(k) != tokenKeyBytes {
		return nil, fmt.Errorf("wallet card %s: key must be %d bytes of hex", c.Label, tokenKeyBytes)
	}
	return k, nil
}

// NextATC advances the card's transaction counter, as the phone does before
// every tap, and returns the counter of the tap about to be made. Copies of
// a card read by Load share one counter, so taps made at once from them each
// get their own; Save writes the highest handed out back as ATC. It panics
// for a card not read by Load, which has no counter to share.
func (c Card) NextATC() uint32 {
	if c.counter == nil {
		panic("wallet: NextATC on card " + c.Label + " not read by Load")
	}
	return c.counter.Add(1)
}

// attachCounters gives each card read from a file its counter.
func (f *File) attachCounters() {
	for i := range f.Cards {
		f.Cards[i].counter = new(atomic.Uint32)
		f.Cards[i].counter.Store(f.Cards[i].ATC)
	}
}

// advancedATC is the ATC to save: the highest counter handed out.
func (c Card) advancedATC() uint32 {
	if c.counter == nil {
		return c.ATC
	}
	return max(c.ATC, c.counter.Load())
}
