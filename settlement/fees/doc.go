// Package fees prices settling transactions with the network's fee
// schedule (configs/fees.yaml): the interchange fee between the two banks
// and the switch fee each bank pays the network.
//
// # Rounding
//
// Every fee is integer arithmetic on fen with one rounding rule: a rate of
// bps basis points applied to an amount is rounded half up on the fen,
//
//	fee = (amount * bps + 5000) / 10000
//
// so 0.5 fen and more rounds up and less rounds down. Amounts are never
// negative here (a transaction's direction is carried apart from its
// amount), so half up and half away from zero are the same thing, and a
// reversal's fee, computed from the same amount, is exactly its original's.
// With amounts of at most 12 digits and bps at most 10000 the product stays
// below 10^16, far inside int64. Floating point was rejected: a binary
// fraction cannot hold 0.35 % exactly, and fees must be the same to the fen
// on every machine and every re-run.
//
// # Interchange
//
// Interchange = min(cap, round(amount * bps)), with bps and cap from the
// transaction's MCC override for its product when there is one, and from its
// product otherwise. An override replaces the product's rate entirely, cap
// included. The acquirer pays it to the issuer on a Debit (purchase, transit
// top-up) and the issuer pays it to the acquirer on a Credit (refund), so a
// refund gives back the interchange its purchase earned; a reversal, whose
// direction is the opposite of its original's, undoes it likewise.
//
// # Switch fee
//
// SwitchFee = max(min, round(amount * bps)), paid by the issuer and by the
// acquirer each, on every settling transaction; a reversal refunds it to
// both, so a reversed purchase costs nobody anything.
package fees
