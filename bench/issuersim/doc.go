// Package issuersim is a simulated issuing bank or city transit operator: a
// real TCP server on the network's wire contract (2-byte big-endian length,
// then an ISO 8583 message on iso8583.Spec) that holds card accounts with
// balances, credit limits, holds and a ledger, a transit operator's purse
// loads too, and answers with configurable latency and faults.
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
//	    DE48 when present must parse as iso8583.TokenData, and its tag 04
//	    (CVN2) when present must be 3 digits
//	--  same DE11+DE7 as an approved request: the first answer again when
//	    MTI, PAN, DE3 and DE4 agree and it was not reversed, else 94
//	94  a reversal for this DE11+DE7 arrived before the request (late
//	    original), or a transit operator's purse load holds the key
//	14  no such card
//	05  card blocked                         (not for 0220)
//	54  card expired, or DE14 is not the card's expiry   (not for 0220)
//	by DE3:
//	  000000 account verification (0100, amount 0, CVN2 in DE48 tag 04):
//	         05 the CVN2 is not the card's (world.Card.CVN2); else 00 with
//	         an approval code and the cardholder's phone (world.Card.Phone)
//	         in DE48 tag 05, where the switch sends the one-time code;
//	         nothing posted, nothing held
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
// # Purse loads
//
// A transit member (issuers.KindTransit) is also the city's operator side
// of a top-up's leg 2 (load.go; docs/wire.md section 12 is the contract):
// an 0200 with DE3 220000 loads a purse, 720000 opens a card with its first
// load. Its mandatory fields are DE2, 3, 4, 7, 11, 32, 33, 37, 41, 49 and
// 100 (no DE14). The operator derives each card's purse key from its
// master key (Config.OperatorKey, 32 bytes; FleetConfig.OperatorKeys by
// operator code) with transit.PurseKey, and decides, first failure wins:
//
//	30  a field missing or malformed; DE48 not iso8583.PurseLoadData; tag 40
//	    missing on a load, present on an opening, or of sequence 0; tag 41
//	    or 42 in a request
//	--  same DE11+DE7 as a granted load: the first answer again (DE38,
//	    grant, key) when MTI, DE2, DE3, DE4 and tag 40 agree and it was
//	    not voided, else 94
//	94  a reversal for this DE11+DE7 came first, or a bank posting holds it
//	14  the card's BIN (Config.Bins, configs/bins.yaml by default) is not
//	    this operator's
//	91  no master key: the member starts without one (its bank-side
//	    traffic needs none, and the dev world runs it so) and cannot sign
//	13  amount 0 or over transit.AmountMax, or balance after over it
//	63  MAC1 does not verify (transit.Grant); an opening has no MAC1 and
//	    is granted as if its purse had signed {balance 0, counter 0,
//	    sequence 1}
//	94  an opening of a card the operator knows; a load of a known card
//	    whose sequence is not exactly the last granted + 1
//	96  loadEntriesMax loads booked
//	00  DE38 and DE48 tag 41 (balance after, MAC2), and for an opening
//	    tag 42 (the purse key): the load is booked (Loads)
//
// A card is known while a grant of it stands. The registry is in memory:
// a restarted operator knows no card and grants a load at the sequence its
// purse states, on a valid MAC1, which only the purse can sign. A 0420 (or
// 0400) whose DE90 names a granted load's DE11 and DE7, with its MTI and
// card, voids it: the purse never took it, so its sequence is free again
// and a voided opening's card unknown again; answered 00, again 00 and
// nothing changes. Not found is 25 and remembered, as below. Loads live
// in a book of their own beside the ledger: they are no hold on an account.
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
// One reader goroutine per connection parses frames in place with the
// network's zero-allocation codec (iso8583.Fields; answers are packed with
// an iso8583.Builder), as the issuer is part of what a bench run measures
// on its machine, and plans each request
// from the seeded generator with the Faults in force at that moment: its
// latency (Faults.Latency plus up to Faults.Jitter) and at most one fault,
// by one uniform draw that the six rates share (so they add up to at most
// 1). The request then waits its latency on a timer in its own goroutine, is
// decided, and its response goes to the connection's one writer, which
// coalesces whatever is pending into one write. Requests in flight on one
// connection are answered in the order their timers fire, not the order
// they came in.
//
// The rule for money: decide and post first, then apply the fault to the
// answer only. Every fault but ErrorRate happens after the decision, so an
// approval whose answer is lost is still held on the card, exactly the case
// a switch must reverse (the issuer approved, the switch never heard).
//
//	fault           decided and posted   what the switch gets
//	ErrorRate       no                   96
//	DropRate        yes                  nothing; the connection stays open
//	DisconnectRate  yes                  the connection closed, no answer
//	DuplicateRate   yes, once            the same response frame twice
//	GarbageRate     yes                  one frame of 16 to 128 printable
//	                                     non-digit bytes: no MTI, so never a
//	                                     message; the connection stays open
//	LateRate        yes, on time         the answer, LateBy after that
//
// Faults.ZeroSecondaryBitmap is no fault but a legal encoding some hosts
// use: every answer carries a secondary bitmap, all zero when no field of
// DE65-128 is set (docs/wire.md section 3); the switch must read it.
//
// Faults apply to 0800 too, as a sick issuer fails its echo. SetFaults
// changes them while serving; requests already read keep their plan. A
// request whose connection ends before its timer fires (a disconnect
// fault on another request, Down, Close, the peer leaving) is never decided;
// an answer decided but not yet written when the connection ends is lost
// and its posting stands.
//
// Down closes every connection and then closes each connection it accepts
// at once, until Up: the listeners stay bound, as with a host whose issuing
// service has stopped, so the switch sees its connects succeed and end.
// Down returns when the closed connections' goroutines are gone, so nothing
// is decided between Down and Up. Fleet.SetFaults, Down and Up take one
// issuer ID or AllIssuers ("*").
//
// Limits: connsMax connections (more are closed at once), inflightPerConnMax
// requests in flight per connection (the reader stops reading until one is
// answered), frames of iso8583.FrameBytesMaxDefault bytes, ledgerEntriesMax
// ledger entries and loadEntriesMax purse loads (then 96), the last
// receivedMax requests kept for Received, delays (Latency+Jitter, and
// LateBy) of faultDelayMax. A frame that does
// not unpack closes its connection: the stream cannot be trusted after it.
//
// # Business days and the ledger export
//
// Each posting belongs to the business day open when the issuer decided it,
// by its Cutoff (default 23:00 Asia/Shanghai, the network's default and the
// switch journal's rule); a reversal is recorded on the posting with its own
// time, day, MTI, DE11 and DE7, and settles on its own day.
//
// Snapshot copies the books; WriteLedgerFile writes one as JSON to
// DIR/ledger-ISSUER.json atomically (temporary file, fsync, rename, fsync of
// DIR), and ReadSnapshot reads one back and recomputes every total (Check).
// The admin endpoint (AdminHandler) serves the same JSON. The field names
// are the format, named by "format"; amounts are integers in minor units
// (fen); PANs are masked (first 6, last 4), because reconciliation matches
// a posting to the switch's journal by DE11 + DE7 + amount + DE37 + DE41,
// not by card number:
//
//	{"format": "tapswitch-issuersim-ledger/1", "issuer": "ICBC",
//	 "taken_at": RFC 3339, "cutoff": "23:00 Asia/Shanghai",
//	 "totals":  {"entries", "reversed", "open_holds", "held", "credited"},
//	 "traffic": {"requests", "answered", "dropped", "errored",
//	             "disconnected", "duplicated", "garbled", "late"},
//	 "days":    [{"day": "YYYYMMDD", "entries", "debits", "credits",
//	              "reversals", "reversed_debits", "reversed_credits"}],
//	 "ledger":  [{"seq", "business_day", "time", "pan", "mti",
//	              "processing_code", "amount", "stan", "transmission_time",
//	              "rrn", "terminal_id", "auth_code", "response_code",
//	              "reversed", "reversal": {"time", "business_day", "mti",
//	              "stan", "transmission_time"} (only when reversed)}],
//	 "holds":   [{"seq", "business_day", "stan", "transmission_time", "pan",
//	              "amount", "rrn", "terminal_id", "auth_code"}],
//	 "accounts": [{"pan", "product", "available", "held", "credited"}],
//	 "loads":   [{"seq", "business_day", "time", "card", "mti",
//	              "processing_code", "amount", "balance_before", "counter",
//	              "sequence", "balance_after", "stan", "transmission_time",
//	              "rrn", "terminal_id", "auth_code", "voided",
//	              "void": {as "reversal"} (only when voided)}]}
//
// totals, days and holds are derived from ledger, and the accounts' held
// and credited sum to the totals'; traffic is counted apart and is not
// checked. loads, a transit operator's granted loads and openings (absent
// when there are none), are checked one by one: sequence numbers 1..n,
// balance_before + amount = balance_after, an opening at balance 0,
// counter 0, sequence 1. They hold neither MAC nor key. A day's debits and credits count what was posted that day,
// reversed or not; its reversed_* count the reversals processed that day,
// so a day's net is debits - credits - reversed_debits + reversed_credits.
// The rejected alternative, a hash of the PAN to match on, would put a
// guessable digest of a card number in a file: with 6+4 digits known, the
// middle 6 digits are at most a million guesses.
package issuersim
