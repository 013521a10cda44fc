// Package tokensvc is the token service: the JSON API under /v1 on the
// switch's public listener (TLS) through which a phone wallet binds a card
// and manages its tokens (docs/api.md is the reference, with examples).
//
// # The four steps of a binding
//
//	POST /v1/sessions                 log in: argon2id, a session for 15 min,
//	                                  bound to the phone's device ID
//	POST /v1/devices/{d}/cards        card details: Luhn, BIN route, then an
//	                                  0100 account verification to the issuer
//	                                  over its link (amount 0, PAN, expiry,
//	                                  CVN2 in DE48 tag 04); on 00 a binding
//	                                  and a 6-digit code sent by SMS to the
//	                                  cardholder's phone that the issuer
//	                                  named in the 0110's DE48 tag 05
//	POST /v1/bindings/{id}/confirm    the code: the token is created in the
//	                                  vault, and its key goes to the wallet,
//	                                  in this answer and never again
//
// Then the lifecycle: list a device's tokens, suspend, resume or delete
// one, and turn a whole device off or on (the lost phone).
//
// # A stolen phone stays off
//
// A session knows the device it was logged in from. Turning a device off
// ends every session of that device, in the batch that marks it off; a
// device that is off cannot log in; and turning a device or a token back
// on needs the account's password in that very request, checked with
// argon2id like a login. So a thief holding the phone, and the session in
// it, can neither pay nor turn the phone back on.
//
// # Rules
//
// The code goes to the phone number the issuer has on file for the
// cardholder, never to the account that asks: card details are all a thief
// needs, the cardholder's phone is not. A card that already has live tokens
// in another account is bound the same way, with a warning in the SMS and a
// card.bound_elsewhere record in those accounts' trails. Every failed
// verification is answered alike (verify.go says how, timing included), and
// verifications are bounded per account and, across accounts, per card,
// device and client address (limits.go).
//
// A token, device or binding that is not the caller's is "not found" (404),
// exactly like one that does not exist. A device belongs to the first
// account that binds a card to it.
//
// Every change is written to the audit trail (AuditRecord) in the same
// synchronous batch as the service's own records; a change to the vault has
// its audit record made durable first, and a second record when the vault
// then refuses. The issuing of a token is the one change that spans both
// stores; Service.issue documents its order and how recover undoes a
// crash in the middle of it, so nothing is left half-created.
//
// Accounts follow NIST SP 800-63B (password.go): logins case-folded,
// passwords of 8-128 characters checked against a shipped list of common
// ones and context words. Password guessing is slowed per client address
// and per address and login (throttle.go), never by locking an account. A
// failed login is one answer, after one hash, whether the login exists or
// not; sign-up does tell a taken login (409), throttled per address.
//
// Secrets: passwords are kept as argon2id hashes with their own salt and
// parameters; sessions are 32 random bytes whose SHA-256 is the store key;
// SMS codes are stored as an HMAC under the vault's index key (a plain hash
// of a 6-digit code is reversed by trying a million codes); the PAN of a
// pending binding, and the cardholder's phone, are sealed with the vault's
// data key. Password and code
// hashes are compared in constant time. No clear PAN, CVN2, code, password,
// session, key or phone number is ever logged or written to the audit
// trail; PANs and tokens appear masked (first 6, last 4), phones as
// 1**-****-**34.
//
// # Bounds
//
//	passwordFailuresPerAddressLogin   5, then 1 per 3 min: 429
//	passwordFailuresPerAddress        20, then 1 per 30 s: 429
//	signupsPerAddress                 10, then 1 per 6 min: 429
//	throttleKeysMax 100,000       then the least recently used is forgotten
//	passwordRunesMin 8, passwordRunesMax 128   400 bad_password
//	passwordHashesInFlightMax 4   more logins wait for a slot
//	sessionsPerAccountMax 8       a new login ends the oldest
//	cardAttemptsMax 10 an hour    card verifications per account: 429
//	verificationsPerCardMax 5 in 24h, verificationsPerDeviceMax 10 an hour,
//	verificationsPerAddressMax 20 an hour   across accounts: 429
//	verifyFailureAnswerMin 250 ms  no failed verification is answered sooner
//	pendingBindingsPerAccountMax 4 codes outstanding per account: 429
//	verificationsInFlightMax 32   issuer verifications at once: 503
//	codeAttemptsMax 5, codeTTL 5 min   then the binding is gone: 410
//	devicesPerAccountMax 16       409
//	requestBodyBytesMax 4096      413
//	auditPageMax 500              records per GET /v1/audit
//	accountsMax 1,000,000         503
//
// # Store
//
// Pebble in Config.DataDir, WAL on, every batch committed with Sync. Values
// are JSON with a format field "v" (1). In cluster mode (Config.Replica)
// every batch goes through the network's replicated log and each node
// applies it to its own copy (package replica, docs/cluster.md); a write
// another node overtook is run again (conflict.go).
//
//	a/<login>                      account: password hash, card
//	                               verifications this hour
//	s/<hex SHA-256 of session>     session: login, device, expiry
//	S/<login>/<hex SHA-256>        empty: the account's sessions
//	b/<binding id>                 binding: state, sealed PAN, masked PAN,
//	                               sealed phone and its mask, code HMAC,
//	                               expiry, attempts left, token
//	B/<login>/<binding id>         empty: the account's recent bindings
//	d/<device>                     device: owner, off, tokens held off
//	D/<login>/<device>             empty: the account's devices
//	g/<seq, 16 hex digits>         audit record, in global order
//	l/<login>/<seq>                empty: the account's audit trail
//	m/accounts                     number of accounts
//	v/c/<window>/<hex PAN HMAC>    verifications of a card in a window
//	v/d/<window>/<device>          ... of a device
//	v/r/<window>/<address>         ... from a client address (IPv6: /64)
//	                               (<window>: its start, Unix seconds as 16
//	                               hex digits; older than the previous
//	                               window: deleted)
//
// Logins and device IDs cannot contain '/', so one account's prefix never
// matches another's keys. Logins are stored lower-case. A failed login at
// an unknown login has a g/ record and no l/ one.
package tokensvc
