package transit

import (
	"cmp"
	"slices"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// LoadLog gathers the purse loads of journal entries for ingestion. A load
// is the operator leg of a top-up or an opening: MTI 0200, processing code
// 220000 or 720000, approved (00), with its PurseLoad; Token is the card,
// Amount the load. A load is dropped when an approved reversal (0400 or
// 0420) of the same terminal names it by STAN and transmission time, as
// any reversal in the journal names its original. Loads move no money
// between members (leg 1, the bank card's 210000, settles that); they are
// only the credits the balance check needs.
//
// Memory: a load is kept only for a card Want accepts (the cards of the
// day's tap files), and every approved reversal's key is kept, because a
// reversal does not say what it reverses was a load.
type LoadLog struct {
	Want     func(card string) bool // nil: every card
	loads    map[journal.Key]Load
	reversed map[journal.Key]bool
}

// Take looks at one journal entry.
func (l *LoadLog) Take(e *journal.Entry) {
	if e.ResponseCode != iso8583.RCApproved {
		return
	}
	switch e.MTI {
	case iso8583.MTIReversalRequest, iso8583.MTIReversalAdvice:
		if k, ok := e.OriginalKey(); ok {
			if l.reversed == nil {
				l.reversed = map[journal.Key]bool{}
			}
			l.reversed[k] = true
		}
		return
	case iso8583.MTIFinancialRequest:
	default:
		return
	}
	if e.PurseLoad == nil || (e.ProcessingCode != iso8583.ProcPurseLoad && e.ProcessingCode != iso8583.ProcPurseOpen) {
		return
	}
	if l.Want != nil && !l.Want(e.Token) {
		return
	}
	if l.loads == nil {
		l.loads = map[journal.Key]Load{}
	}
	l.loads[e.Key()] = Load{Card: e.Token, Amount: int64(e.Amount), AfterCounter: e.PurseLoad.AfterCounter, Sequence: e.PurseLoad.Sequence}
}

// Loads returns the loads not reversed, sorted by card, sequence and the
// rest of the load, so the order of the journals does not matter.
func (l *LoadLog) Loads() []Load {
	var out []Load
	for k, ld := range l.loads {
		if !l.reversed[k] {
			out = append(out, ld)
		}
	}
	slices.SortFunc(out, compareLoad)
	return out
}

func compareLoad(a, b Load) int {
	return cmp.Or(cmp.Compare(a.Card, b.Card), cmp.Compare(a.Sequence, b.Sequence),
		cmp.Compare(a.Amount, b.Amount), cmp.Compare(a.AfterCounter, b.AfterCounter))
}
