// Package quarantine decides which of a business day's settling journal
// records cannot be settled, so that one bad record is set aside instead
// of holding back every member's money. It is pure: the caller
// (settlement/settleday) reads the sealed days and feeds it the entries.
//
// # What is quarantined, and what fails the run
//
// A record is quarantined for a reason about that record alone:
//
//	issuer-not-member     the entry's issuer ID is not a member of the network
//	bad-field             a field the clearing format cannot carry, or a
//	                      missing settlement field (settlement.CheckEntry)
//	acquirer-is-switch    DE32 is the network's own institution, not a bank
//	acquirer-not-member   DE32 is no member's institution
//	original-quarantined  a reversal whose original, on the same day, is
//	                      quarantined
//	reversal-quarantined  an original whose reversal, on the same day, is
//	                      quarantined
//
// The last two keep money consistent: a reversal cancels its original by
// itself (see package settlement), so settling one of a pair without the
// other would move money that, in the issuer's books, never moved. A pair
// on the same day is settled or set aside together. A reversal of an
// earlier day's transaction is judged on its own; the switch copies the
// original's parties and settlement fields into the reversal, so the faults
// above carry over to it by themselves.
//
// Corruption of the input is not a bad record but a broken invariant, and
// the caller still fails the whole run on it: a sealed file that fails its
// digest or a record its CRC, a sealed PAN that the keys cannot open (or
// that opens to something that is not a card number). Quarantine decides
// before any PAN is opened, from the entry and the configuration alone, so
// no decision depends on the keys.
//
// # Two passes
//
// A reversal can come before its original in the day's order (node ID, then
// journal seq) when the two were journaled on different nodes, and the
// clearing files are written as the records stream past. So the caller reads
// the day twice: Survey sees every settling entry and remembers the keys of
// the faulty ones; Decide, on the second pass, gives each entry its final
// answer. Memory is bounded by RecordsMax, not by the day's size.
//
// # The exceptions report
//
// Report lists the quarantined records, one line each, in the day's order:
// node, journal seq, MTI, processing code, direction, amount, terminal,
// STAN, RRN, acquirer, issuer, the token masked, reason and detail. It never
// holds a PAN (quarantined records are never unsealed). settleday writes it
// as exceptions-<day>.txt and exceptions-<day>.json next to the net report,
// on every run, empty when nothing was quarantined, so a re-run after a fix
// replaces a stale list. docs/clearing-format.md describes both files.
package quarantine
