// Package journal is the switch's durable record of every authorization
// outcome. The switch appends an entry, synced to disk, before the terminal
// gets its answer; a repeated request (same terminal, STAN and transmission
// time) finds the first entry by its key and gets the first answer again;
// settlement reads whole business days back in sequence order.
//
// # Store
//
// One Pebble database per switch node, WAL on, every Append committed with
// pebble.Sync. Two kinds of key, written together in one batch so that a
// reader never sees one without the other:
//
//	entry  'e' | day (8 ASCII digits, YYYYMMDD) | Seq (8 bytes, big-endian)  -> record
//	index  'k' | TerminalID | 0x00 | STAN | 0x00 | TransmissionTime          -> pointer
//
// Other keys, written in the same batches, are listed in saf.go: advices,
// reversed originals, stand-in usage, token counters and refunded totals.
//
// Entry keys sort by business day and then by Seq, so a day is one
// contiguous key range read in Seq order, and the days present are found by
// skipping from one day's range to the next. The 0x00 separators cannot
// occur inside the index fields: TerminalID is validated as printable ASCII
// and STAN and TransmissionTime as digits.
//
// In a cluster, every batch also carries its batch mark, and the store a
// replication floor (replica.go: the batches copied to a replicated stream
// before a write returns).
//
// Beside them (saf.go, atc.go and sealed.go have the rest): a sealed day's
// mark 'z' | day, written when its sealed file is; and "yfloor" -> day, the
// first business day new entries may have, written only when a day is
// closed before its cut-off (CloseDay, switchd -dev).
//
// # Record (value of an entry key), version 1
//
// All integers big-endian. Every variable field is a 2-byte length followed
// by that many bytes, in the fixed order below.
//
//	 0        1             9             17            25                 57       58
//	+--------+-------------+-------------+-------------+------------------+--------+
//	| ver=1  | Seq         | Time        | Amount      | RequestDigest    | flags  |
//	| u8     | u64         | i64 Unix ns | i64 minor   | 32 bytes         | u8     |
//	+--------+-------------+-------------+-------------+------------------+--------+
//	58
//	+---------+-------------+---------+--------+-----+---------+------------------+
//	| len u16 | BusinessDay | len u16 | NodeID | ... | len u16 | PANSealed        |
//	+---------+-------------+---------+--------+-----+---------+------------------+
//	n-4
//	+-------------------------------------------+
//	| CRC-32C (Castagnoli) of bytes [0, n-4)    |
//	+-------------------------------------------+
//
// The variable fields, in order: BusinessDay, NodeID, MTI, ProcessingCode,
// Currency, TerminalID, STAN, TransmissionTime, RRN, MerchantID, MCC,
// Acquirer, Token, IssuerID, Product, IssuerSTAN, ResponseCode, AuthCode,
// CardExpiry, IssuerTransmissionTime, OriginalSTAN, OriginalTransmissionTime,
// PANSealed. flags bit 0 is StandIn; bit 1 says a purse load follows
// PANSealed: its Sequence (u32) and AfterCounter (u16), 6 bytes, before the
// CRC; the other bits must be zero. Time is read back in UTC.
//
// # Pointer (value of an index key), version 1
//
//	 0        1                9             17
//	+--------+----------------+-------------+-------------+
//	| ver=1  | day (8 ASCII)  | Seq u64     | CRC-32C u32 |
//	+--------+----------------+-------------+-------------+
//
// # Invariants and ordering
//
//   - Seq is strictly increasing over the journal's life; at Open it resumes
//     after the largest Seq stored. A Seq is taken only once an entry has
//     passed its duplicate check, so gaps appear only after a failed write.
//   - Seq order is not commit order: two appends of different keys may reach
//     the disk in either order. Within one node, Seq order is decision order
//     only as far as the caller's clock is.
//   - An entry joins the business day of its Time, not of the moment it was
//     written, so an entry decided at 22:59:59.9 may land after 23:00. Readers
//     of a closed day should wait a grace period after the cut-off.
//   - At most one entry per Key: appends of one Key hold one of 256 lock
//     stripes across their check and commit, so different keys still share
//     Pebble's group-commit fsync.
//   - Entries are validated when written and again when read back: a record
//     or pointer that fails its CRC or decoding is a broken invariant and is
//     reported as ErrCorrupt with the key, never skipped.
//
// # Why not JSON (or gob, or protobuf)
//
// JSON was rejected: it costs reflection and several allocations per entry
// on the hot path, is two to three times larger, writes PANSealed as base64
// and the digest as an array of numbers, and has no canonical byte form to
// put a checksum over (field order, spacing and escaping all vary by
// encoder). gob carries type descriptions per stream, not per value, so a
// lone record is not self-contained. Protobuf would add a code generator and
// a dependency for a struct with one fixed shape. The format here is
// fixed-order, allocation-free to write, readable in a hex dump, and its
// version byte lets a later layout be read side by side with this one.
package journal
