// Package issuersim is a simulated issuing bank or city transit operator: a
// real TCP server on the network's wire contract (2-byte big-endian length,
// then an ISO 8583 message on iso8583.Spec) that holds card accounts with
// balances, credit limits, holds and a ledger, and answers with configurable
// latency and faults.
//
// # Requests and answers
//
// The decision is the pure function decide (decide.go): the book's state and
// one parsed request in, a decision out; the server applies it under a mutex.
// For 0100 authorization, 0200 financial and 0220 advice, checks run in this
// order, first failure wins:
//
//	30  a mandatory field is missing or malformed: DE2, DE3, DE4 (not for
//	    balance inquiry), DE7, DE11, DE14, DE37, DE41, DE49 (must be 156);
//	    DE48 when present must parse as iso8583.TokenData
//	--  same DE11+DE7 as an approved request: the first answer again when
//	    MTI, PAN, DE3 and DE4 agree and it was not reversed, else 94
//	94  a reversal for this DE11+DE7 arrived before the request (late original)
//	14  no such card
//	05  card blocked                         (not for 0220)
//	54  card expired, or DE14 is not the card's expiry   (not for 0220)
//	by DE3:
//	  000000 purchase, 210000 top-up: 13 amount 0; 51 amount above available
//	         (not for 0220); else 00, a hold of the amount, a ledger entry
//	  200000 refund: 13 amount 0; else 00, the account credited, a ledger entry
//	  310000 balance inquiry: 00 and DE54
//	  other: 12
//
// Available is balance (debit, transit) or credit limit (credit), plus
// refunds, minus holds. A 0220 advice reports an approval the switch already
// gave in stand-in, so the issuer posts it even when it would have declined.
// Holds are never cleared into the balance: the simulation ends before any
// clearing would reach the issuer.
//
// 0400 reversal and 0420 reversal advice find their original by DE90:
//
//	DE90 (42 digits) = original MTI (4) | original DE11 (6) | original DE7 (10)
//	                 | acquirer ID (11, zero-padded left) | forwarder ID (11)
//
// The original is the ledger entry with that DE11 and DE7, whose MTI is the
// one in DE90 and whose PAN is DE2. Found: the hold is released (a reversed
// refund takes its credit back), the entry marked Reversed, answer 00. Found
// again: 00, nothing changes. Not found: 25, and the key is remembered (the
// last orphanReversalsMax of them) so that a late original is answered 94
// instead of taking money the switch already gave back. DE4 of a reversal is
// not compared: the contract has no partial reversals.
//
// 0800 network management answers 0810 with 00 for DE70 001, 002 and 301,
// 12 for another code, 30 without DE7, DE11 or DE70.
//
// Responses carry the response MTI, DE39, and echo DE2, DE3, DE4, DE7, DE11,
// DE37, DE41, DE49 (DE90 too for reversals; DE7, DE11, DE70 for 0810) when the
// request had them. Approvals carry DE38, a 6-digit authorization code.
//
// DE54 of a balance inquiry is one 20-character additional-amount block:
//
//	account type (2) | amount type (2) | currency (3) | sign (1) | amount (12)
//	10 savings (debit) 02 available     156             C or D     minor units
//	30 credit
//	00 transit
//
// e.g. "1002156C000000012345" is 123.45 CNY available on a debit card.
//
// # Connections and faults
//
// One reader goroutine per connection unpacks frames; each request then waits
// its latency (Faults.Latency plus up to Faults.Jitter) on a timer in its own
// goroutine, is decided, and its response goes to the connection's one
// writer, which coalesces whatever is pending into one write. Requests in
// flight on one connection are answered in the order their timers fire, not
// the order they came in. Faults are drawn after the latency: DropRate of
// requests are never answered and change nothing; ErrorRate are answered 96
// and change nothing. Both apply to 0800 too, as a sick issuer fails its echo.
//
// Limits: connsMax connections (more are closed at once), inflightPerConnMax
// requests in flight per connection (the reader stops reading until one is
// answered), frames of iso8583.FrameBytesMaxDefault bytes, ledgerEntriesMax
// ledger entries (then 96), the last receivedMax requests kept for Received.
// A frame that does not unpack closes its connection: the stream cannot be
// trusted after it.
package issuersim
