// Package reconcile compares an issuer's own ledger with the issuer's
// clearing file for one business day and lists every break: what one side
// has and the other has not, or has with another amount or direction. A
// clean day has none. It is pure: both sides come in as values, the report
// goes out as a value, and its text and JSON depend on nothing else.
//
// # Key
//
// The issuer knows a transaction by the STAN and transmission time (DE11,
// DE7) the switch sent it, not the terminal's; the clearing record carries
// them as the issuer trace (docs/clearing-format.md, fields 29-30). A
// ledger posting and the records of its day are matched on that pair. A
// reversal reaches the issuer under its original's trace and the issuer
// marks the original reversed, so one ledger entry can stand for two
// records, an original (reversal flag N) and a reversal (Y), told apart by
// the flag.
//
// # Rules
//
// For a day D, each ledger entry expects these records in D's file:
//
//	ledger entry                             records expected on D
//	posted on D, not reversed                the original, once
//	posted on D, reversed after D            the original, once
//	posted on D, reversed on D               the original and the reversal, or neither
//	posted before D, reversed on D           the reversal, once
//	anything else                            none
//
// The original record has the posting's amount and direction; the reversal
// has the same amount and the opposite direction. Every record that no
// entry expects is extra: one for a posting of another day, a second record
// for the same posting, a reversal of a posting the ledger has not
// reversed, or a trace the ledger does not hold at all.
//
// Breaks, one per record and difference:
//
//	missing            the ledger expects a record that the file lacks
//	extra              the file has a record that no ledger entry expects
//	amount_differs     a matched record's amount is not the ledger's
//	direction_differs  a matched record's debit/credit is not the one expected
//
// # A posting reversed on its own day
//
// The switch journals a reversal as an entry of its own, so a purchase
// reversed by its terminal shows in the file as the original and a
// reversal record, netting to zero. A posting the issuer approved but whose
// answer never reached the switch (a time-out) is different: the switch
// declined it towards the terminal (or stood in under a new trace), so no
// settling journal entry has its trace, and the 0420 reversal advice the
// switch armed before sending made the issuer reverse it. Its ledger entry
// is posted and reversed, and no file has it. The issuer cannot tell the
// two apart (both reversals arrive as 0420 advices), so the rule is both
// records or neither: one without the other is a break, since the file
// would then move money the ledger does not, or the other way round. The
// report counts the "neither" entries (ReversedNotCleared), so that they
// are seen, not silently passed.
//
// The rejected alternatives: "always both" reports every time-out as two
// missing records on a day that is in fact clean; "always neither" would
// call the switch's own record of a terminal's reversal extra. The reverse
// case, an original and its reversal in the file and nothing in the ledger,
// stays two extra records: it means the issuer never posted an approval
// the switch gave in its name (an 0220 advice lost or refused), which
// someone must look at even though it nets to zero.
//
// # Days at the edges
//
// Both sides must day transactions by the same cut-off. A transaction
// decided moments before the cut-off, or a stand-in or reversal advice that
// reached the issuer only after it, falls on one day in the file and the
// next in the ledger: that shows as a break on both days (extra on one,
// missing on the other), and the reason names the other side's day.
//
// # Input
//
// LedgerEntry is this package's own, so that settlement does not depend on
// any one issuer's export format. From the issuer simulator's ledger export
// (bench/issuersim) an entry maps field for field, with the direction from
// the processing code (settlement.DirectionOf) and ReversalDay from
// reversal.business_day. The clearing side is the detail records of the
// issuer's file as clearing.Read returns them.
package reconcile
