package cluster

import (
	"encoding/binary"
	"fmt"
)

// claimRecord is the value of a duplicate key: a node's claim while it
// works on the request, then the answer it journaled.
//
//	version u8 = 1 | state u8 (1 claimed, 2 answered) | RequestDigest 32 bytes |
//	len u8 | node | len u8 | rc | len u8 | auth code | len u8 | issuer
//
// rc, auth code and issuer are empty in a claim.
type claimRecord struct {
	answered bool
	digest   [32]byte
	node     string
	rc       string
	authCode string
	issuer   string
}

const (
	claimVersion  = 1
	claimPending  = 1
	claimAnswered = 2
)

func encodeClaim(r claimRecord) []byte {
	state := byte(claimPending)
	if r.answered {
		state = claimAnswered
	}
	b := make([]byte, 0, 2+32+4+len(r.node)+len(r.rc)+len(r.authCode)+len(r.issuer))
	b = append(b, claimVersion, state)
	b = append(b, r.digest[:]...)
	for _, s := range [...]string{r.node, r.rc, r.authCode, r.issuer} {
		if len(s) > 255 {
			// Node IDs are checked at open, the rest are wire fields of a
			// few bytes: a longer one is a bug.
			panic(fmt.Sprintf("cluster: claim field of %d bytes", len(s)))
		}
		b = append(append(b, byte(len(s))), s...)
	}
	return b
}

func decodeClaim(b []byte) (claimRecord, error) {
	var r claimRecord
	if len(b) < 2+32 || b[0] != claimVersion || (b[1] != claimPending && b[1] != claimAnswered) {
		return r, fmt.Errorf("value of %d bytes, not a version %d claim", len(b), claimVersion)
	}
	r.answered = b[1] == claimAnswered
	copy(r.digest[:], b[2:34])
	rest := b[34:]
	for _, s := range [...]*string{&r.node, &r.rc, &r.authCode, &r.issuer} {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return r, fmt.Errorf("claim truncated")
		}
		*s, rest = string(rest[1:1+int(rest[0])]), rest[1+int(rest[0]):]
	}
	if len(rest) != 0 || r.node == "" || r.answered != (r.rc != "") {
		return r, fmt.Errorf("claim of %d bytes malformed", len(b))
	}
	return r, nil
}

// usageRecord is the value of a token's stand-in usage on a day:
//
//	version u8 = 1 | count u64 BE | amount i64 BE (minor units)
type usageRecord struct {
	count  uint64
	amount int64
}

const (
	usageVersion = 1
	usageBytes   = 1 + 8 + 8
)

func encodeUsage(u usageRecord) []byte {
	b := make([]byte, usageBytes)
	b[0] = usageVersion
	binary.BigEndian.PutUint64(b[1:], u.count)
	binary.BigEndian.PutUint64(b[9:], uint64(u.amount))
	return b
}

func decodeUsage(b []byte) (usageRecord, error) {
	if len(b) != usageBytes || b[0] != usageVersion {
		return usageRecord{}, fmt.Errorf("value of %d bytes, not a version %d stand-in usage", len(b), usageVersion)
	}
	u := usageRecord{count: binary.BigEndian.Uint64(b[1:]), amount: int64(binary.BigEndian.Uint64(b[9:]))}
	if u.amount < 0 {
		return usageRecord{}, fmt.Errorf("stand-in usage of negative amount %d", u.amount)
	}
	return u, nil
}
