package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tapswitch/tapswitch/iso8583"
)

// Refunded totals: how much of a purchase its approved refunds have given
// back, so that refunds never give back more than the purchase took.
//
//	refunded 'f' | TerminalID | 0 | STAN | 0 | TransmissionTime -> total u64 | CRC-32C u32
//
// The key is the purchase's. The total is written in the same batch as the
// approved refund's entry (Change.Refunded), so a crash keeps both or
// neither, and a restart finds the total the refunds before it reached. The
// caller holds the purchase's key lock from the read of the total to the
// append, so two refunds of one purchase cannot both take its last
// remainder.

const (
	prefixRefunded = 'f'
	refundedBytes  = 8 + crcBytes
)

// Refunded is the new refunded total of the purchase with key Original.
type Refunded struct {
	Original Key
	Total    iso8583.Amount
}

func appendRefundedKey(dst []byte, k Key) []byte {
	return appendKeyed(dst, prefixRefunded, k)
}

func applyRefunded(b *pebble.Batch, r *Refunded) error {
	if r.Total <= 0 || r.Total > amountMax {
		return fmt.Errorf("journal: refunded total %d outside 1..%d", r.Total, amountMax)
	}
	v := binary.BigEndian.AppendUint64(nil, uint64(r.Total))
	v = binary.BigEndian.AppendUint32(v, crc32.Checksum(v, castagnoli))
	return b.Set(appendRefundedKey(nil, r.Original), v, nil)
}

// RefundedOf returns how much approved refunds have given back of the
// purchase with key k (0 when none).
func (j *Journal) RefundedOf(k Key) (iso8583.Amount, error) {
	if !j.life.enter() {
		return 0, errClosed
	}
	defer j.life.leave()
	v, closer, err := j.db.Get(appendRefundedKey(nil, k))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer closer.Close()
	if len(v) != refundedBytes || crc32.Checksum(v[:8], castagnoli) != binary.BigEndian.Uint32(v[8:]) {
		return 0, fmt.Errorf("%w: refunded total of %s", ErrCorrupt, indexKeyName(k))
	}
	return iso8583.Amount(binary.BigEndian.Uint64(v)), nil
}
