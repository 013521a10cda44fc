package journal

import "hash/maphash"

// The duplicate check of an authorization is read twice without this: the
// pipeline looks its key up before asking the issuer (a retransmission
// must not be forwarded), and Append checks again before it writes, since
// an append of the same key may have committed in between. On a busy
// switch both reads are misses, and each is a Pebble Get through the
// memtables and every level's filter: the journal's costliest reads.
//
// An Absence carries the first read's answer to the append. Index keys
// fall into absenceSlots slots by hash; each slot counts the appends that
// may have written one of its keys, counted after the append's commit and
// before its stripe lock is released. Find reads the count before its Get;
// AppendAbsent, under the key's stripe lock, skips the second Get only if
// the count is unchanged. If it is unchanged, no append of the slot has
// committed since the count was read, and any that committed before it
// was visible to Find's Get; if it changed, the Get is made again. So the
// guarantee is Append's own: an entry's key is written once.

// absenceSlots is the number of counts. With thousands of appends per
// second and an issuer round trip of a millisecond between Find and the
// append, about one in a thousand appends finds its slot changed and reads
// the key again.
const absenceSlots = 1 << 14

// Absence is Find's proof that no entry had a key. The zero value proves
// nothing.
type Absence struct {
	journal *Journal // counts are per open journal
	key     Key
	slot    uint32
	appends uint64
}

func (j *Journal) absenceSlot(index []byte) uint32 {
	return uint32(maphash.Bytes(j.seed, index) >> 32 % absenceSlots)
}

// holds reports whether a, taken by j, proves key k absent now, given the
// slot's current count of appends.
func (a Absence) holds(j *Journal, k Key, slot uint32, appends uint64) bool {
	return a.journal == j && a.key == k && a.slot == slot && a.appends == appends
}
