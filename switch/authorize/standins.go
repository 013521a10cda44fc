package authorize

import (
	"context"

	"github.com/tapswitch/tapswitch/switch/journal"
)

// StandIns keeps each token's stand-in usage per business day, against
// which StandInAllowed decides: on one node the journal's usage records
// (the default), in a cluster a store every node shares (switch/cluster),
// so that nodes standing in for one token together stay within its caps.
type StandIns interface {
	// Hold returns token's usage on day. The caller calls Release once.
	// An error means the usage could not be read: no stand-in.
	Hold(ctx context.Context, day, token string) (StandInHold, error)
}

// StandInHold is one stand-in decision's hold on a token's usage of a day.
type StandInHold interface {
	// Used is the usage as last read.
	Used() journal.Usage
	// Take adds one approval of amount to Used. taken false: the usage
	// had moved on (another node stood in for the token meanwhile); Used
	// now returns the new one, and the approval must be decided again.
	// rec is the record to journal with the approval (nil: none, the
	// store keeps the usage itself).
	Take(ctx context.Context, amount int64) (rec *journal.Usage, taken bool, err error)
	// Release ends the hold once the outcome's append returned (journaled
	// false when it did not commit, or when nothing was taken).
	Release(journaled bool)
}

// takeTriesMax bounds the decisions of one stand-in whose Take found the
// usage moved on; each lost try means another node stood in for the
// token, so a stand-in still losing after this many is not made (91).
const takeTriesMax = 16

// journalStandIns is the single node's StandIns: the journal's usage
// records, read and written under a token lock, so two taps of this node
// cannot both take the token's last allowance.
type journalStandIns struct {
	tokens keyLocks[string]
	j      *journal.Journal
}

// journalStandIn is a hold of journalStandIns: the token's lock.
type journalStandIn struct {
	owner journalStandIns
	used  journal.Usage
}

// Hold implements StandIns.
func (s journalStandIns) Hold(ctx context.Context, day, token string) (StandInHold, error) {
	if err := s.tokens.lock(ctx, token); err != nil {
		return nil, err
	}
	used, err := s.j.StandInUsage(day, token)
	if err != nil {
		s.tokens.unlock(token)
		return nil, err
	}
	return &journalStandIn{owner: s, used: used}, nil
}

// Used implements StandInHold.
func (h *journalStandIn) Used() journal.Usage { return h.used }

// Take implements StandInHold: the usage is this node's alone.
func (h *journalStandIn) Take(_ context.Context, amount int64) (*journal.Usage, bool, error) {
	return &journal.Usage{Day: h.used.Day, Token: h.used.Token, Count: h.used.Count + 1,
		Amount: h.used.Amount + amount}, true, nil
}

// Release implements StandInHold: the next tap of the token reads this
// one's usage from the journal.
func (h *journalStandIn) Release(bool) { h.owner.tokens.unlock(h.used.Token) }
