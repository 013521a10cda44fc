package transit

import (
	"crypto/hmac"
	"encoding/binary"
	"errors"

	"github.com/tapswitch/tapswitch/iso8583/mac"
)

// An online load (top-up, PBOC's 圈存) credits the purse with money the
// network took from a bank card. As in the PBOC e-purse, it is a
// three-message exchange between the purse and its operator, relayed by
// the phone and the switch:
//
//  1. the purse states its balance, tap counter and next load sequence and
//     signs them with MAC1 (LoadRequest.MAC): the operator learns the
//     purse's state from the purse itself, not from the phone's word;
//  2. the operator checks MAC1 and the sequence, records the load and
//     answers MAC2 (LoadGrant.MAC) over the same fields and the balance
//     after;
//  3. the purse credits itself only on a MAC2 that verifies under its own
//     key: nobody but the operator can make a purse take value.
//
//	MAC1 = HMAC-SHA256(purse key, "tapswitch load request v1" 0x00 | len(card) | card |
//	                   amount i64 | balance i64 | counter u16 | sequence u32)[:8]
//	MAC2 = HMAC-SHA256(purse key, "tapswitch load grant v1" 0x00 | len(card) | card |
//	                   amount i64 | balance i64 | counter u16 | sequence u32 | balance after i64)[:8]
//
// The sequence is the purse's online counter (PBOC's online transaction
// sequence number): 1 for the opening load, +1 per load. The operator
// refuses a sequence it has already granted to a different request, so a
// replayed grant is useless: the purse has moved past its sequence.

const (
	loadRequestLabel = "tapswitch load request v1\x00"
	loadGrantLabel   = "tapswitch load grant v1\x00"
	// LoadMACBytes is the length of MAC1 and MAC2.
	LoadMACBytes = 8
)

// Errors of a load.
var (
	ErrLoadSequence = errors.New("transit: load sequence is not the purse's next")
	ErrLoadMAC      = errors.New("transit: load MAC does not verify")
	ErrOverBalance  = errors.New("transit: balance after the load is over the purse's maximum")
)

// LoadRequest is what the purse signs to ask for a load.
type LoadRequest struct {
	Card     string
	Amount   int64  // fen
	Balance  int64  // the purse's balance before the load
	Counter  uint16 // the purse's tap counter: the load lands after this tap
	Sequence uint32 // the purse's next load sequence
	MAC      [LoadMACBytes]byte
}

// LoadGrant is the operator's answer that lets the purse credit itself.
type LoadGrant struct {
	BalanceAfter int64
	MAC          [LoadMACBytes]byte
}

func (r *LoadRequest) encode(label string) []byte {
	b := make([]byte, 0, len(label)+1+len(r.Card)+8+8+2+4+8)
	b = append(b, label...)
	b = append(b, byte(len(r.Card)))
	b = append(b, r.Card...)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Amount))
	b = binary.BigEndian.AppendUint64(b, uint64(r.Balance))
	b = binary.BigEndian.AppendUint16(b, r.Counter)
	return binary.BigEndian.AppendUint32(b, r.Sequence)
}

func loadMAC(key [PurseKeyBytes]byte, input []byte) [LoadMACBytes]byte {
	var out [LoadMACBytes]byte
	sum := mac.HMACSHA256(key[:], input)
	copy(out[:], sum[:])
	return out
}

// Validate checks the request's fields (not its MAC).
func (r *LoadRequest) Validate() error {
	switch {
	case !ValidCard(r.Card):
		return ErrBadCard
	case r.Amount <= 0 || r.Amount > AmountMax:
		return ErrBadAmount
	case r.Balance < 0 || r.Balance > AmountMax:
		return ErrBadAmount
	case r.Balance+r.Amount > AmountMax:
		return ErrOverBalance
	case r.Sequence == 0:
		return ErrLoadSequence
	}
	return nil
}

// RequestMAC is MAC1 of r under key.
func RequestMAC(key [PurseKeyBytes]byte, r *LoadRequest) [LoadMACBytes]byte {
	return loadMAC(key, r.encode(loadRequestLabel))
}

// VerifyRequest reports whether r's MAC1 verifies under key.
func VerifyRequest(key [PurseKeyBytes]byte, r *LoadRequest) bool {
	want := RequestMAC(key, r)
	return hmac.Equal(want[:], r.MAC[:])
}

// GrantMAC is MAC2 for request r: what the operator answers when it grants
// the load.
func GrantMAC(key [PurseKeyBytes]byte, r *LoadRequest) [LoadMACBytes]byte {
	b := binary.BigEndian.AppendUint64(r.encode(loadGrantLabel), uint64(r.Balance+r.Amount))
	return loadMAC(key, b)
}

// Grant is the operator's side: it checks MAC1 under the purse key and
// returns the grant. The sequence check against the operator's own record
// of the card is the caller's.
func Grant(key [PurseKeyBytes]byte, r *LoadRequest) (LoadGrant, error) {
	if err := r.Validate(); err != nil {
		return LoadGrant{}, err
	}
	if !VerifyRequest(key, r) {
		return LoadGrant{}, ErrLoadMAC
	}
	return LoadGrant{BalanceAfter: r.Balance + r.Amount, MAC: GrantMAC(key, r)}, nil
}

// LoadRequest returns the signed request for a load of amount fen.
func (p Purse) LoadRequest(amount int64) (LoadRequest, error) {
	r := LoadRequest{Card: p.Card, Amount: amount, Balance: p.Balance, Counter: p.Counter, Sequence: p.LoadSequence + 1}
	if err := r.Validate(); err != nil {
		return LoadRequest{}, err
	}
	r.MAC = RequestMAC(p.Key, &r)
	return r, nil
}

// Credit applies a grant to the purse that made request r. It refuses,
// leaving the purse as it was, unless r is the purse's current request (its
// balance, counter and next sequence) and the grant's MAC2 verifies.
func (p Purse) Credit(r LoadRequest, g LoadGrant) (Purse, error) {
	if r.Card != p.Card || r.Balance != p.Balance || r.Counter != p.Counter || r.Sequence != p.LoadSequence+1 {
		return p, ErrLoadSequence
	}
	want := GrantMAC(p.Key, &r)
	if g.BalanceAfter != r.Balance+r.Amount || !hmac.Equal(want[:], g.MAC[:]) {
		return p, ErrLoadMAC
	}
	p.Balance = g.BalanceAfter
	p.LoadSequence = r.Sequence
	return p, nil
}
