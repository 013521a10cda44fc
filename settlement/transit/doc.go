// Package transit is the offline half of a city transit card: the stored-value
// purse in the phone's secure element, the key it signs taps with, and the
// transaction certificate (TAC) each tap carries.
//
// The models are the PBOC e-purse (JR/T 0025, the "electronic purse" EP
// application: consumption debits the purse offline, each with a 2-byte
// offline transaction sequence number and a 4-byte TAC that the issuer
// recomputes) and the T-Union interoperable transit standard built on it.
// What we keep from them: a per-card key derived by the operator from its
// master key and the card number (PBOC diversifies the TAC key per card);
// a counter the card increments on every debit, so the operator can see a
// missing or a repeated tap; and a MAC over the tap's money fields that only
// the card and its operator can compute, so a gate cannot invent taps.
//
// What we change: PBOC and T-Union compute the TAC with 3DES or SM4 and keep
// 4 bytes. We compute HMAC-SHA256 under a 16-byte purse key and keep 8
// bytes, because the rest of tapswitch already keys everything with
// HMAC-SHA256 (iso8583/mac.HMACSHA256, the token key in docs/keys.md), and
// 64 bits leave a forger one chance in 2^64 per guess against 2^32 for a
// 4-byte TAC. It means our TAC is not byte-compatible with a real PBOC card:
// the simulated world is closed, and a real SE applet would need the
// operator to verify its 3DES/SM4 TAC instead.
//
// # Purse key
//
//	purse key = HMAC-SHA256(operator master, "tapswitch purse key v1" 0x00 card)[:16]
//
// card as its ASCII digits. The same construction as the token key.
//
// # TAC input (canonical, big-endian, fixed layout)
//
//	"tapswitch tac v1" 0x00      17 bytes, domain label
//	len(card)                     1 byte
//	card                          ASCII digits, 8..19 bytes
//	amount                        int64, fen
//	counter                       uint16, the counter of this tap
//	balance after                 int64, fen
//	gate                          12 ASCII digits (4 of operator, 8 of gate)
//	time                          int64, Unix seconds UTC
//
//	TAC = HMAC-SHA256(purse key, input)[:8]
//
// # Counter
//
// A uint16, like PBOC's 2-byte offline transaction sequence number: a new
// purse has counter 0, its first tap carries 1, and a purse whose counter
// has reached 65535 refuses further debits (the card must be reissued; at
// ten taps a day that is eighteen years). A counter that wrapped would make
// the operator's duplicate and gap checks meaningless.
package transit
