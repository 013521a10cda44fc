// Package iso8583 is the network's message contract on top of
// github.com/moov-io/iso8583: one shared spec, length-prefixed framing, the
// MTIs, processing and response codes, and the PAN type that masks itself.
//
// A frame on the wire:
//
//	+--------+--------+------+----------------+-------------------------+
//	| len hi | len lo | MTI  | bitmap(s)      | data elements, in order |
//	+--------+--------+------+----------------+-------------------------+
//	  2 bytes, big-     4 ASCII 8 bytes binary,  ASCII; numeric fields
//	  endian length of  digits  16 when any of   zero-padded left; LLVAR/
//	  what follows              DE65-128 is set  LLLVAR lengths as 2/3
//	                                             ASCII digits; DE52, DE55,
//	                                             DE64, DE128 raw bytes
//
// Unpack is strict: a message it accepts packs back to exactly the same bytes,
// with one exception the standard allows: a secondary bitmap that is present
// but all zero (some terminal libraries always send one) is accepted, and
// Pack drops it. Anything else is a FormatError, answered 30 by the switch
// when the MTI could be read. docs/wire.md holds the field table.
package iso8583
