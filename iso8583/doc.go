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
//
// # Two codecs, one table
//
// fieldDefs in spec.go is the one definition of every data element (kind,
// length, length-prefix digits). Two codecs are derived from it:
//
//   - moov-io/iso8583 (Spec, Unpack, Pack, NewMessage): the reference. It
//     serves every message off the hot path and the tools, and it is the
//     oracle the other codec is held to.
//   - Fields and Builder: the hot path's codec, for the switch's own
//     messages (terminal and issuer requests and answers). Fields parses a
//     payload in place, recording where each value lies in the frame
//     buffer; Builder copies values into its own reused store and packs
//     them into the caller's buffer, signed (AppendSigned) and framed
//     (AppendFrame) if asked. Neither allocates: a terminal's 0200 parses
//     in under a tenth of Unpack's time with 0 allocations instead of 86,
//     and an answer packs in under a tenth of Pack's with 0 instead of 97
//     (bench_test.go: BenchmarkFrameReadParse beside
//     BenchmarkFrameReadUnpack, BenchmarkBuilder beside BenchmarkPack).
//
// FuzzFastAgreesWithMoov holds the second to the first on every input:
// Fields refuses exactly what Unpack refuses, for the same FormatError MTI
// and Field (the error's words are its own: the terminal session unpacks a
// refused frame again with moov to log and echo it exactly as before), it
// reads every field of an accepted payload as Unpack does (text fields
// without their padding), and a Builder given those fields packs the bytes
// Pack packs. Builder is stricter than Pack in one way only: it refuses a
// value Unpack would refuse (a letter in a numeric field), so what it packs
// is always readable by the contract.
//
// A second hand-written field table was rejected: it would drift from the
// moov spec, and the fuzz target would then test one table against another
// instead of the code. Generating Go from the table was rejected too: an
// array built from fieldDefs at init (fieldTable) costs nothing at run time.
package iso8583
