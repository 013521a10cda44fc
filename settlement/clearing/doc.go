// Package clearing writes and reads the network's clearing files: for each
// member bank, business day and role, the list of transactions it settles,
// in a fixed-width ASCII format. docs/clearing-format.md is the full
// specification, with every field's bytes; header.go, detail.go and
// trailer.go hold one record type each, with its layout in a comment and in
// a field table that a test keeps equal to the document.
//
// # File
//
//	line 1      +---+----------------------------------------------------+----+
//	            | H | version, file ID, member, role, day, switch, cur.  | \n |
//	line 2      +---+----------------------------------------------------+----+
//	            | D | transaction 1: keys, money, fees, parties, card    | \n |
//	  ...       | D | ...                                                | \n |
//	line n+1    | D | transaction n                                      | \n |
//	line n+2    +---+----------------------------------------------------+----+
//	            | T | count, totals, hash total, SHA-256 of lines 1..n+1 | \n |
//	            +---+----------------------------------------------------+----+
//	            byte 1                                            byte 300
//
// Every record is exactly 300 bytes of printable ASCII and a "\n". Numeric
// fields (N) are right-justified and zero-filled; text fields (A) are
// left-justified and space-filled; flags (F) are one character; reserved
// bytes (X) are spaces. An issuer's file carries the PAN in its card number
// field; an acquirer's carries the token and never the PAN. Every detail
// record also carries the issuer trace, the STAN and transmission time the
// switch sent the issuer, by which an issuer matches the file against its
// own books (settlement/reconcile). Adding a field takes reserved bytes and
// a new format version; the record stays 300 bytes.
//
// # Order
//
// Detail records are numbered 1, 2, 3 ... and sorted by business day (one
// per file), node ID (byte order) and journal seq; a (node ID, journal seq)
// appears at most once. The Writer refuses records out of order instead of
// sorting them, so it holds one record at a time and the caller's sort is the
// only one.
//
// # Determinism
//
// Nothing in a file comes from the wall clock or from chance: the file ID is
// derived from day, member and role, and the creation date is the business
// day. The same transactions give the same bytes on every run.
//
// # Checking
//
// The Reader validates as it reads: each record's length and fields, the
// cross-field rules (the D/C indicator follows from MTI, processing code and
// reversal flag), the numbering, order and the header's member and
// currency, and at the trailer every total, the hash total and the digest,
// recomputed. Any mismatch is an *Error naming the line, the record, the
// field and its bytes. The Writer checks every record by the same rules
// before writing it, so what it writes, the Reader accepts.
//
// # Rejected alternatives
//
// CSV or JSON lines: no fixed positions for the banks' batch systems,
// quoting rules that differ by reader, and no one byte form to total and
// hash. EBCDIC and packed decimal: the members' older formats use them, but
// they make a file unreadable in a terminal and add nothing here. A digest
// over the trailer too: the digest cannot include itself, and covering the
// other trailer fields adds nothing, since the reader recomputes them.
package clearing
