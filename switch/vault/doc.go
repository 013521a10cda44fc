// Package vault is the token vault: it maps each wallet token to the card it
// stands for, with the token's binding (device, wallet account, requestor),
// status, expiries and domain restrictions. It is read on every
// authorization, so Get is one Pebble Get and one AES-GCM open.
//
// # Keys
//
// One key per purpose, and each host holds only the ones its job needs
// (docs/keys.md). A key file is text, one key a line, base64 (standard
// alphabet, padded) of exactly 32 random bytes:
//
//	# comments and blank lines are ignored
//	index: <base64>         HMAC-SHA256 key of the PAN index; exactly one, never rotated
//	token-master: <base64>  derives each token's cryptogram key; exactly one, never rotated
//	v1: <base64>            AES-256-GCM data keys; at least one, versions 1-65535
//	v2: <base64>            the highest version is current: new seals use it
//
// The switch's file holds all of them (ParseKeyring, LoadKeyringFile: a
// missing index or token-master line is refused with the line to add).
// settle's file holds the data keys only (ParseDataKeys, LoadDataKeysFile):
// it opens the journal's sealed PANs and nothing else, and a file of its
// holding the index key or the token master is refused, not ignored, so a
// copy of the switch's file on the settle host is noticed at the first run.
// WriteDataKeysFile makes settle's file from the switch's. The types
// follow the roles: settle gets DataKeys, which has no IndexHash or
// TokenKey to call.
//
// GenerateKeyringFile writes a switch file with mode 0600; the loaders
// refuse a file that group or others can read or write. Errors name the
// line, never the key.
//
// The index key does not rotate: every PAN index entry is a hash under it.
// Nor does the token master: every phone holds a key derived from it. The
// vault records a MAC under the token master it first opened with
// (m/tokenmaster) and refuses another, at Open and at SetKeyring.
//
// # Rotation
//
// Without downtime, in three steps (docs/keys.md has the operator's view):
//
//  1. Add v<N+1> to the key file and hand the vault the new keyring with
//     SetKeyring (or restart). From then on new seals use v<N+1>; records
//     under older versions still open. Readers load the keyring once per
//     call, without a lock, so the swap never stalls an authorization.
//  2. Rekey re-seals every record under an older version, a bounded batch
//     per synchronous commit, re-reading each record under the write lock
//     so that a Put or SetStatus racing it is never undone. It can stop at
//     any point (cancel, crash) and be run again to finish.
//  3. When Rekey completes, no record is under an old version, and the
//     version may leave the key file, as far as the vault is concerned: the
//     journal's sealed PANs use the same keys (docs/keys.md says when they
//     let it go).
//
// The vault keeps a list of the versions its records may be sealed under
// (m/keyversions): a version joins it, durably, before anything is sealed
// under it, and leaves it only when a completed Rekey has counted no record
// under it. Open and SetKeyring refuse a keyring that lacks a listed version,
// without reading every record; SetKeyring also refuses another index key,
// another token master, or another key under a version number already in
// use.
//
// Open checks the keyring against a probe stored in the vault at creation,
// so a wrong key file fails at start-up, not at the first authorization.
//
// # Store
//
// Pebble, WAL on, every write committed with Sync. In cluster mode
// (OpenReplica) the records' batches go through the network's replicated
// log and each node applies them to its own copy; the m/ records below
// stay node-local (package replica, docs/cluster.md). Keys:
//
//	t/<token>                       -> record (below)
//	p/<32-byte HMAC of PAN>/<token> -> empty    look-up by PAN
//	d/<device ID>/<token>           -> empty    look-up by device
//	m/keycheck                      -> 32-byte HMAC of a probe | Seal(probe)
//	m/keyversions                   -> versions in use, u16 BE ascending | CRC-32C
//	m/tokenmaster                   -> 32-byte HMAC of a label under the token master
//
// A clear PAN never appears in a key or a value. Device IDs cannot contain
// '/', so a device's prefix never matches another device's keys. Put writes
// a record and its index entries in one batch and deletes the entries of the
// record it replaces, so the indexes always match the records.
//
// # Record, format version 1
//
//	 0      1      2      3           7           11           19        23
//	+------+------+------+-----------+-----------+------------+---------+
//	| fmt  |status|domain| card exp  | token exp | created at | created |
//	| = 1  |      |flags | YYMM      | YYMM      | Unix s, BE | ns, BE  |
//	+------+------+------+-----------+-----------+------------+---------+
//	 23
//	+---+-----------+---+---------+---+-----------+---+------------+--------+
//	| n | device ID | n | wallet  | n | requestor | n | sealed PAN | CRC-32C|
//	|   | n bytes   |   | account |   | ID        |   |            | BE     |
//	+---+-----------+---+---------+---+-----------+---+------------+--------+
//
// status is 1 active, 2 suspended, 3 deleted; domain bit 0 is contactless
// only, other bits must be 0. Each n is one byte. The sealed PAN is
// Keyring.Seal(PAN, aad = token): version, nonce, ciphertext, tag. Binding
// it to the token means a ciphertext copied into another token's record does
// not open. The CRC-32C (Castagnoli) covers every byte before it; GCM alone
// covers the PAN, the CRC the clear fields. A record that fails either, or
// any field rule on read, is ErrCorrupt.
//
// Rejected: encrypting the whole record. Status and device are read and
// rewritten by SuspendDevice and SetStatus, which then never need the data
// key, and they are not secret. Rejected too: gob or protobuf for the
// record. A fixed layout is smaller, needs no reflection on the hot path and
// is written down here.
//
// # Rules
//
// Tokens and PANs are 12-19 digit Luhn-valid numbers; a token never equals
// its own PAN, nor any PAN in the vault, and a PAN is never a token in the
// vault. Deleted is final: a deleted token cannot be reactivated or
// replaced. A device holds at most 256 tokens and a card at most 1024,
// deleted ones included, because they keep their index entries.
package vault
