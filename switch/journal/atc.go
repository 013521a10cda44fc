package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/cockroachdb/pebble/v2"
)

// Transaction counters: which of each token's counters the switch has
// accepted (switch/cryptogram.Window), written in the batch of the
// outcome of the tap that used them, so a tap's counter is spent exactly
// when its outcome is durable.
//
//	counters 'c' | token | 0x00 | version (8 bytes BE)
//	    -> ver=1 u8 | last u32 | bitmap length u16 | bitmap | CRC-32C u32
//
// The bitmap is opaque here: cryptogram.Window writes and reads it.
//
// Several taps of one token are in flight at once and their batches commit
// in any order, so one key per token, overwritten, could end holding an
// older window than a later tap's. Each tap's window is a snapshot taken
// under the pipeline's per-token lock and numbered one above the previous
// instead; the highest version stored is the token's window. A batch
// deletes the lower versions its caller names (Drop: those it knows were
// written before the batch was prepared, so the delete lands after the
// write); any left behind are removed the next time the token's window is
// loaded (LoadATC).

const (
	prefixCounters  = 'c'
	countersVersion = 1
	countersHead    = 1 + 4 + 2
	// countersTokenBytesMax bounds the token part of a key: tokens are
	// 13-19 digits.
	countersTokenBytesMax = 19
	// countersSeenBytesMax bounds the bitmap (cryptogram's is 128 bytes).
	countersSeenBytesMax = 1024
	// countersDropMax bounds the versions one batch deletes.
	countersDropMax = 1024
)

// ATCUpdate records a token's accepted counters after a tap, under
// Version: the highest accepted and the bitmap of those below it
// (cryptogram.Window's Last and AppendSeen). Drop are lower versions the
// batch deletes.
type ATCUpdate struct {
	Token   string
	Version uint64
	Last    uint32
	Seen    []byte
	Drop    []uint64
}

// ATCState is a token's accepted counters as stored: the window of the
// highest version.
type ATCState struct {
	Version uint64
	Last    uint32
	Seen    []byte
}

func checkCountersToken(token string) error {
	if len(token) == 0 || len(token) > countersTokenBytesMax {
		return fmt.Errorf("journal: counters of token of %d characters", len(token))
	}
	for i := range len(token) {
		if token[i] < '0' || token[i] > '9' {
			return errors.New("journal: counters of a token that is not all digits")
		}
	}
	return nil
}

func appendCountersPrefix(dst []byte, token string) []byte {
	dst = append(dst, prefixCounters)
	dst = append(dst, token...)
	return append(dst, 0)
}

func appendCountersKey(dst []byte, token string, version uint64) []byte {
	return binary.BigEndian.AppendUint64(appendCountersPrefix(dst, token), version)
}

func appendCountersRecord(dst []byte, last uint32, seen []byte) []byte {
	start := len(dst)
	dst = append(dst, countersVersion)
	dst = binary.BigEndian.AppendUint32(dst, last)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(seen)))
	dst = append(dst, seen...)
	return binary.BigEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
}

func decodeCounters(token string, key, v []byte) (ATCState, error) {
	prefix := len(appendCountersPrefix(nil, token))
	if len(key) != prefix+8 {
		return ATCState{}, fmt.Errorf("%w: counters key of %d bytes for a token of %d", ErrCorrupt, len(key), len(token))
	}
	s := ATCState{Version: binary.BigEndian.Uint64(key[prefix:])}
	body, err := checkCRC(v, countersHead)
	if err != nil || body[0] != countersVersion || len(body) != countersHead+int(binary.BigEndian.Uint16(body[5:])) {
		return ATCState{}, fmt.Errorf("%w: counters version %d of a token: bad record (%v)", ErrCorrupt, s.Version, err)
	}
	s.Last, s.Seen = binary.BigEndian.Uint32(body[1:]), append([]byte(nil), body[countersHead:]...)
	return s, nil
}

// applyATC adds a tap's counters to its outcome's batch.
func applyATC(b *pebble.Batch, u *ATCUpdate) error {
	if err := checkCountersToken(u.Token); err != nil {
		return err
	}
	if u.Version == 0 || len(u.Seen) > countersSeenBytesMax || len(u.Drop) > countersDropMax {
		return fmt.Errorf("journal: counters version %d with a bitmap of %d bytes, dropping %d versions",
			u.Version, len(u.Seen), len(u.Drop))
	}
	if err := b.Set(appendCountersKey(nil, u.Token, u.Version), appendCountersRecord(nil, u.Last, u.Seen), nil); err != nil {
		return err
	}
	for _, v := range u.Drop {
		if v >= u.Version {
			return fmt.Errorf("journal: counters version %d dropping version %d", u.Version, v)
		}
		if err := b.Delete(appendCountersKey(nil, u.Token, v), nil); err != nil {
			return err
		}
	}
	return nil
}

// LoadATC returns token's accepted counters: the highest version stored.
// found is false for a token never tapped. It also deletes the token's
// lower versions, left by batches that committed out of order: the highest
// version's window holds every counter theirs did, and a batch still in
// flight writes a version above it, or one below that is dropped again at
// a later load.
func (j *Journal) LoadATC(token string) (state ATCState, found bool, err error) {
	if err := checkCountersToken(token); err != nil {
		return ATCState{}, false, err
	}
	if !j.life.enter() {
		return ATCState{}, false, errClosed
	}
	defer j.life.leave()
	lower := appendCountersPrefix(nil, token)
	upper := append(appendCountersPrefix(nil, token)[:len(lower)-1], 1)
	it, err := j.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return ATCState{}, false, err
	}
	var stale [][]byte
	for ok := it.Last(); ok; ok = it.Prev() {
		if found {
			stale = append(stale, append([]byte(nil), it.Key()...))
			continue
		}
		v, verr := it.ValueAndErr()
		if verr != nil {
			_ = it.Close()
			return ATCState{}, false, fmt.Errorf("journal: read counters: %w", verr)
		}
		if state, err = decodeCounters(token, it.Key(), v); err != nil {
			_ = it.Close()
			return ATCState{}, false, err
		}
		found = true
	}
	if err := it.Close(); err != nil {
		return ATCState{}, false, fmt.Errorf("journal: read counters: %w", err)
	}
	if len(stale) > 0 {
		j.dropStale(stale)
	}
	return state, found, nil
}

// dropStale deletes superseded counter versions. Not synced: a version
// that comes back after a crash is below the current one and is dropped
// again at the next load.
func (j *Journal) dropStale(keys [][]byte) {
	b := j.db.NewBatch()
	defer b.Close()
	for _, k := range keys {
		_ = b.Delete(k, nil)
	}
	_ = b.Commit(pebble.NoSync)
}

// LastATC returns the highest counter accepted for token, false when none
// was.
func (j *Journal) LastATC(token string) (uint32, bool, error) {
	s, found, err := j.LoadATC(token)
	return s.Last, found, err
}
