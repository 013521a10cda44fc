package iso8583

import (
	"fmt"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/iso8583/mac"
)

// MACField is the data element msg's MAC goes in: DE128 when msg carries
// any of DE65-127 (so it has a secondary bitmap), DE64 otherwise.
func MACField(msg *moov.Message) int {
	for id := range msg.GetFields() {
		if id > 64 && id < mac.FieldSecondary {
			return mac.FieldSecondary
		}
	}
	return mac.FieldPrimary
}

// PackSigned packs msg with its MAC under key as its last field
// (docs/wire.md section 11). Any MAC field msg held is replaced.
func PackSigned(msg *moov.Message, key []byte) ([]byte, error) {
	msg.UnsetField(mac.FieldPrimary)
	msg.UnsetField(mac.FieldSecondary)
	if err := msg.BinaryField(MACField(msg), make([]byte, mac.Size)); err != nil {
		return nil, err
	}
	payload, err := Pack(msg)
	if err != nil {
		return nil, err
	}
	if err := mac.Sign(key, payload); err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	return payload, nil
}
