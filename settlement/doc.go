// Package settlement is the pure core of the network's end-of-day
// settlement: which journal entries move money, and in which direction.
// Its subpackages price them (fees), net them per member (netting), write
// them for the member banks (clearing) and set aside the records that
// cannot be settled (quarantine). Nothing here reads a clock,
// a file or the network: the caller (cmd/settle) reads the sealed journal
// days, unseals the PANs through the vault, and hands the entries in.
//
// # Which entries settle
//
// An entry settles when the switch approved it (response code 00), it moved
// a positive amount, it was routed to an issuer, and it is one of:
//
//	MTI 0100, 0200, 0220 (authorization, financial request, advice)
//	  with processing code 000000 purchase, 200000 refund, 210000 transit top-up
//	MTI 0400, 0420 (reversal, reversal advice) of one of those
//
// Balance inquiries (310000), declines and zero amounts move no money and do
// not settle. Stand-in approvals settle like any other approval: the switch
// approved on the issuer's behalf, and the issuer owes the money all the same.
//
// # Direction
//
// A purchase or a transit top-up debits the cardholder: the issuer pays the
// acquirer, who pays its merchant (Debit, 'D'). A refund credits the
// cardholder: the acquirer pays the issuer (Credit, 'C'). A reversal moves
// the same money back, so its direction is the opposite of its original's.
//
// # Reversals
//
// A reversal is a Txn of its own, with Reversal set and Original naming the
// duplicate key (terminal, STAN, transmission time) of the transaction it
// cancels. It carries the original's amount, processing code and parties, so
// it cancels the original by itself: amount and fees flow back exactly. A
// reversed purchase therefore contributes zero to every total and position
// without the two ever being paired, which keeps netting a single streaming
// pass with memory that does not grow with the day, and a reversal
// processed a day after its original (it settles on the day it was
// processed) still cancels it across days. Settlement does not match
// reversals to originals to check them: the switch does that when it
// authorizes the reversal (switch/authorize finds the original by its
// duplicate key, copies its amount, parties and issuer trace into the
// reversal, and journals at most one approved reversal per original; see
// the contract with the journal below). The one pairing settlement does is
// settlement/quarantine's: a reversal and its original on the same day are
// quarantined together. (A Matcher that re-checked every pair was removed:
// no run used it, and it held about 180 bytes per transaction of the day.)
//
// The rejected alternative was to drop both the original and its reversal
// from the clearing files. Then a member's files would no longer show every
// approval its own ledger holds, and a reversal arriving on the next day
// would have nothing to drop.
//
// # Issuer trace
//
// The switch talks to an issuer with its own STAN and transmission time
// (DE11, DE7), not the terminal's, so an issuer knows a transaction by
// those. Every Txn carries them (IssuerSTAN, IssuerTransmissionTime): for a
// stand-in approval they are those of the 0220 advice that told the issuer,
// for a reversal those of its original, since the issuer marks the original
// reversed rather than posting anew. The issuer's clearing file carries them
// so that it can reconcile against its books (settlement/reconcile).
//
// # Contract with the journal
//
// A reversal entry must be journalled with response code 00 only when it
// actually reversed an approved, settling original; otherwise it would move
// money that never moved. switch/authorize keeps it two ways, both of which
// Settles excludes:
//
//   - a reversal of nothing (no original with its duplicate key and token)
//     is answered 25 (original not found) and journalled with 25;
//   - a reversal of a declined original, or of one reversed already, is
//     answered 00 (the terminal's retry must succeed) but journalled
//     unrouted: no issuer, so it names no one to move money between.
//
// A business day's entries reach settlement as one sealed file per node
// (switch/journal, sealed.go): every node seals every closed day, an idle
// one as a file of zero records, so settlement/settleday can refuse a day
// when a node's file is missing instead of taking it for a day without
// traffic.
package settlement
