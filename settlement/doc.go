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
// pass, and a reversal processed a day after its original (it settles on the
// day it was processed) still cancels it across days. Matcher checks the
// pairs it can see: one reversal per original, and reversal and original
// agreeing on everything that moves money and on the issuer trace.
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
// actually reversed an approved, settling original; a reversal the switch
// acknowledged without finding one (or of a declined original) must carry
// another response code, or it would move money that never moved.
package settlement
