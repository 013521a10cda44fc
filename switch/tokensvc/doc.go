// Package tokensvc is the token service: the JSON API under /v1 on the
// switch's public listener (TLS) through which a phone wallet binds a card
// and manages its tokens (docs/api.md is the reference, with examples).
//
// # The four steps of a binding
//
//	POST /v1/sessions                 log in: argon2id, a session for 15 min
//	POST /v1/devices/{d}/cards        card details: Luhn, BIN route, then an
//	                                  0100 account verification to the issuer
//	                                  over its link (amount 0, PAN, expiry,
//	                                  CVN2 in DE48 tag 04); on 00 a binding
//	                                  and a 6-digit code sent by SMS
//	POST /v1/bindings/{id}/confirm    the code: the token is created in the
//	                                  vault, and its key goes to the wallet,
//	                                  in this answer and never again
//
// Then the lifecycle: list a device's tokens, suspend, resume or delete
// one, and turn a whole device off or on (the lost phone).
//
// # Rules
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
// Secrets: passwords are kept as argon2id hashes with their own salt and
// parameters; sessions are 32 random bytes whose SHA-256 is the store key;
// SMS codes are stored as an HMAC under the vault's index key (a plain hash
// of a 6-digit code is reversed by trying a million codes); the PAN of a
// pending binding is sealed with the vault's data key. Password and code
// hashes are compared in constant time. No clear PAN, CVN2, code, password,
// session or key is ever logged or written to the audit trail; PANs and
// tokens appear masked (first 6, last 4).
//
// # Bounds
//
//	loginFailuresMax 5            then the account is locked 15 min: 423
//	passwordHashesInFlightMax 4   more logins wait for a slot
//	sessionsPerAccountMax 8       a new login ends the oldest
//	cardAttemptsMax 10 an hour    card verifications per account: 429
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
// are JSON with a format field "v" (1).
//
//	a/<login>                      account: password hash, failure count,
//	                               lock-out, card verifications this hour
//	s/<hex SHA-256 of session>     session: login, expiry
//	S/<login>/<hex SHA-256>        empty: the account's sessions
//	b/<binding id>                 binding: state, sealed PAN, masked PAN,
//	                               code HMAC, expiry, attempts left, token
//	B/<login>/<binding id>         empty: the account's recent bindings
//	d/<device>                     device: owner, off, tokens held off
//	D/<login>/<device>             empty: the account's devices
//	g/<seq, 16 hex digits>         audit record, in global order
//	l/<login>/<seq>                empty: the account's audit trail
//	m/accounts                     number of accounts
//
// Logins and device IDs cannot contain '/', so one account's prefix never
// matches another's keys.
package tokensvc
