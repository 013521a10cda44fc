// Package netting computes the multilateral net position of every member
// for one business day: what each bank owes the network or is owed by it,
// once every transaction and fee of the day is offset against the others.
//
// # Flows
//
// For a transaction of amount A, interchange I and switch fee S (fees.Fees),
// with m = +1 for a Debit and -1 for a Credit, and s = +1 for an original
// and -1 for a reversal:
//
//	issuer     -m*A  +m*I  -s*S
//	acquirer   +m*A  -m*I  -s*S
//	switch                 +2*s*S
//
// Every line sums to zero across the three parties, so the positions of a
// day sum to exactly zero; Report asserts it (and that every flow's paid
// side equals its received side) and panics if not, because a day that does
// not balance is a bug, never an input to be reported. The same member may
// be issuer and acquirer of one transaction (on-us); the rules still hold.
//
// On a day settled with tap files (EnableTransit) the transit operators'
// fares between them are netted too (AddTransit): for fares F owed by the
// operator whose cards were tapped (debtor) to the operator whose gates
// carried them (creditor),
//
//	debtor     -F
//	creditor   +F
//
// with no fee; the transit columns are left out of the reports on a day
// without tap files, so such a day's reports are as before.
//
// A positive net position is owed to the member; a negative one the member
// pays. The network itself is a member ("00010000" in configs/switch.yaml)
// whose only flow is switch fees.
//
// # Gross columns
//
// Gross amounts are kept per role and direction, as the clearing files'
// trailers show them: as issuer, the debits (cardholders debited, paid to
// acquirers) and credits (received from acquirers); as acquirer, the debits
// (received for merchants) and credits (paid back on refunds). A reversed
// purchase shows in the gross columns twice, once each way, and nets to zero.
// Interchange is gross (paid and received apart); switch fees are net of
// refunds.
//
// # Determinism
//
// Positions are sorted by institution ID (byte order). The text and JSON
// reports depend on nothing but the Report, so a re-run is byte-identical.
package netting
