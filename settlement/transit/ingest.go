package transit

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"
	"time"
)

// Load is a credit to a purse made online (the top-up built later). It
// lands between two taps: AfterCounter is the purse's counter when the load
// was applied, so the load sits between tap AfterCounter and tap
// AfterCounter+1. Sequence numbers a card's loads; a load seen twice (same
// card and sequence) counts once.
type Load struct {
	Card         string
	Amount       int64 // fen
	AfterCounter uint16
	Sequence     uint32
}

// InFile is one uploaded tap file with the name it came under.
type InFile struct {
	Name string
	Data []byte
}

// Cleared is a tap that clears, with the business day of its file and
// the operator that issued its card.
type Cleared struct {
	Tap
	Day      string
	File     string
	Line     int
	Operator string // the card's operator (Operators), who owes the fare
}

// Rejection is a record (Line > 0) or a whole file (Line 0) that does not
// clear, with the reason.
type Rejection struct {
	File   string
	Line   int
	Card   string // empty when the record did not parse
	Reason string
}

// Gap is a run of counters of a card that no file has (yet) shown.
type Gap struct {
	Card     string
	From, To uint16 // the missing counters, inclusive
}

// Result is the outcome of an ingestion, every slice sorted.
type Result struct {
	Cleared    []Cleared
	Rejections []Rejection
	Gaps       []Gap
	Blacklist  []string
}

// ReasonBadLoad is a load that is malformed or conflicts with another.
const ReasonBadLoad = "malformed or conflicting load"

type candidate struct {
	Cleared
	reason string // a reason it was already refused for, or ""
}

// Batch is what one ingestion takes: the look-up of a card's operator, the
// operators' master keys by operator code, the tap files and the loads.
type Batch struct {
	Cards   Operators
	Masters map[string][]byte
	Files   []InFile
	Loads   []Load
	// Day, when set, is the business day being cleared: a file whose
	// header names another day is rejected whole (ReasonOtherDay).
	Day string
	// DayOf, when set, is the business day of a time (the network's
	// cut-off): a tap whose time is not in its file's business day is
	// rejected (ReasonOutsideDay).
	DayOf func(time.Time) string
}

// Ingest verifies and checks the tap files against the operators' master
// keys and the loads. The rules, in order:
//
//  1. a file without a good header is rejected whole, and so, with Day
//     (a day being cleared between members), is a file of another day or
//     of an operator without a master key (the fares of its gates would be
//     owed to no member); the reader's record faults are rejections;
//  2. a record whose card no operator issued (Operators), or whose
//     operator has no master key, is rejected (unknown card); a record
//     whose TAC does not verify is rejected; with DayOf, a record whose
//     time is outside its file's business day is rejected;
//  3. records with the same card and counter: if identical, the first (in
//     sorted order) clears and the rest are rejected as already cleared (a
//     resent file clears once); if they differ, the purse was cloned or
//     tampered with: every one is rejected and the card blacklisted;
//  4. a counter going back within one gate's file blacklists the card (a
//     purse's counter only rises) and the record is rejected;
//  5. per card, in counter order, a tap must follow the card's last
//     cleared tap (a tap refused for its balance is no base): right after
//     it, balance after = its balance after + loads in between - amount;
//     across counters between (a gap, reported when unseen) at most that
//     less one fen per counter. A tap that breaks this is rejected and the
//     card blacklisted. Loads are taken whatever their order; different
//     loads under one card and sequence are all rejected, and no balance
//     is checked across them.
//
// Inputs are sorted first, so the result does not depend on their order.
func (b Batch) Ingest() Result {
	var r Result
	black := map[string]bool{}
	files := slices.Clone(b.Files)
	slices.SortStableFunc(files, func(a, b InFile) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), bytes.Compare(a.Data, b.Data))
	})
	keys := map[string][PurseKeyBytes]byte{}
	var cands []candidate
	for _, in := range files {
		f, faults, err := ReadTapFile(in.Data)
		if err != nil {
			r.Rejections = append(r.Rejections, Rejection{File: in.Name, Reason: err.Error()})
		}
		if f == nil {
			continue
		}
		if reason := b.refuseFile(f.Header); reason != "" {
			r.Rejections = append(r.Rejections, Rejection{File: in.Name, Reason: reason})
			continue
		}
		for _, x := range faults {
			if x.Tap == nil {
				r.Rejections = append(r.Rejections, Rejection{File: in.Name, Line: x.Line, Reason: x.Reason})
				continue
			}
			reason := ""
			if x.Reason == ReasonCounterBack {
				reason = ReasonCounterBack
			}
			cands = append(cands, candidate{Cleared{Tap: *x.Tap, Day: f.Header.Day, File: in.Name, Line: x.Line}, reason})
		}
		for i, t := range f.Taps {
			cands = append(cands, candidate{Cleared{Tap: t, Day: f.Header.Day, File: in.Name, Line: f.Lines[i]}, ""})
		}
	}
	// Rule 2: the TAC.
	verified := cands[:0]
	for _, c := range cands {
		op, known := b.Cards.Of(c.Card)
		master, ok := b.Masters[op]
		if !known || !ok {
			r.Rejections = append(r.Rejections, Rejection{c.File, c.Line, c.Card, ReasonUnknownCard})
			continue
		}
		key, ok := keys[c.Card]
		if !ok {
			key = PurseKey(master, c.Card)
			keys[c.Card] = key
		}
		if !VerifyTAC(key, &c.Tap) {
			r.Rejections = append(r.Rejections, Rejection{c.File, c.Line, c.Card, ReasonBadTAC})
			continue
		}
		if b.DayOf != nil && b.DayOf(c.Time) != c.Day {
			// The TAC verified, so the purse signed this time: the gate's
			// clock is wrong, or the tap is another day's (a gate that
			// crashed sends its pending taps again in its next file).
			r.Rejections = append(r.Rejections, Rejection{c.File, c.Line, c.Card, ReasonOutsideDay})
			continue
		}
		c.Operator = op
		verified = append(verified, c)
	}
	// Rule 4, now that the TAC says the card really did it.
	kept := verified[:0]
	for _, c := range verified {
		if c.reason == ReasonCounterBack {
			r.Rejections = append(r.Rejections, Rejection{c.File, c.Line, c.Card, ReasonCounterBack})
			black[c.Card] = true
			continue
		}
		kept = append(kept, c)
	}
	slices.SortFunc(kept, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(a.Card, b.Card), cmp.Compare(a.Counter, b.Counter),
			compareTap(&a.Tap, &b.Tap), cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line))
	})
	// Rule 3.
	var unique []Cleared
	for i := 0; i < len(kept); {
		j := i + 1
		same := true
		for j < len(kept) && kept[j].Card == kept[i].Card && kept[j].Counter == kept[i].Counter {
			same = same && compareTap(&kept[j].Tap, &kept[i].Tap) == 0
			j++
		}
		switch {
		case same:
			unique = append(unique, kept[i].Cleared)
			for _, c := range kept[i+1 : j] {
				r.Rejections = append(r.Rejections, Rejection{c.File, c.Line, c.Card, ReasonResent})
			}
		default:
			black[kept[i].Card] = true
			for _, c := range kept[i:j] {
				r.Rejections = append(r.Rejections, Rejection{c.File, c.Line, c.Card, ReasonCloned})
			}
		}
		i = j
	}
	// Rule 5. base is the card's last tap that cleared: a tap refused for
	// its balance is no base for the next (its balance is the one thing
	// known to be wrong), and the counters from base to the next are then
	// bounded like a gap's, though only unseen counters are reported as
	// one.
	credits, unsure := loadsByCard(b.Loads, &r)
	var base *Cleared
	for i, c := range unique {
		if i == 0 || unique[i-1].Card != c.Card {
			r.Cleared = append(r.Cleared, c)
			base = &r.Cleared[len(r.Cleared)-1]
			continue
		}
		if p := unique[i-1]; c.Counter-p.Counter > 1 {
			r.Gaps = append(r.Gaps, Gap{c.Card, p.Counter + 1, c.Counter - 1})
		}
		if !balanceFollows(base, &c, credits[c.Card], unsure[c.Card]) {
			black[c.Card] = true
			r.Rejections = append(r.Rejections, Rejection{c.File, c.Line, c.Card, ReasonBalance})
			continue
		}
		r.Cleared = append(r.Cleared, c)
		base = &r.Cleared[len(r.Cleared)-1]
	}
	for c := range black {
		r.Blacklist = append(r.Blacklist, c)
	}
	slices.Sort(r.Blacklist)
	slices.SortFunc(r.Rejections, func(a, b Rejection) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Card, b.Card))
	})
	return r
}

// Reasons a whole file is refused at ingestion.
const (
	ReasonOtherDay        = "file of another business day"
	ReasonUnknownOperator = "file of an operator without a master key"
	// ReasonOutsideDay is a tap whose time is not in its file's business day.
	ReasonOutsideDay = "time outside the file's business day"
)

// refuseFile is the reason a file with header h is refused whole, or "".
// A file speaks for its operator's gates (ReadTapFile); when clearing a
// day, an operator without a master key is not one the clearing knows.
func (b *Batch) refuseFile(h Header) string {
	if b.Day != "" && h.Day != b.Day {
		return ReasonOtherDay
	}
	if _, ok := b.Masters[h.Operator]; !ok && b.Day != "" {
		return ReasonUnknownOperator
	}
	return ""
}

func compareTap(a, b *Tap) int {
	return cmp.Or(cmp.Compare(a.Card, b.Card), cmp.Compare(a.Counter, b.Counter),
		a.Time.Compare(b.Time), cmp.Compare(a.Gate, b.Gate), cmp.Compare(a.Amount, b.Amount),
		cmp.Compare(a.BalanceAfter, b.BalanceAfter), bytes.Compare(a.TAC[:], b.TAC[:]))
}

// balanceFollows reports whether tap c's balance follows from base, the
// card's last cleared tap, and the loads between them. Right after base
// the balance must be exact; with counters between (unseen or refused),
// lower by at least a fen per counter. Across a load whose amount is not
// known (unsure: conflicting loads of one sequence) nothing is checked.
func balanceFollows(base *Cleared, c *Cleared, credits []Load, unsure []uint16) bool {
	for _, after := range unsure {
		if after >= base.Counter && after < c.Counter {
			return true
		}
	}
	var loaded int64
	for _, l := range credits {
		if l.AfterCounter >= base.Counter && l.AfterCounter < c.Counter {
			loaded += l.Amount
		}
	}
	want := base.BalanceAfter + loaded - c.Amount
	if missing := int64(c.Counter) - int64(base.Counter) - 1; missing > 0 {
		return c.BalanceAfter <= want-missing
	}
	return c.BalanceAfter == want
}

// loadsByCard keeps one load per card and sequence, whatever the order of
// loads. A malformed load is reported (file "loads", line its sequence)
// and not counted. Different loads under one card and sequence are all
// reported and none is counted; the operator grants a sequence once, so
// the journals disagree with themselves, and the balance check does not
// guess which the purse took: across such a load (at any of their
// AfterCounters, returned in unsure) it checks nothing.
func loadsByCard(loads []Load, r *Result) (credits map[string][]Load, unsure map[string][]uint16) {
	type key struct {
		card string
		seq  uint32
	}
	loads = slices.Clone(loads)
	slices.SortFunc(loads, compareLoad)
	loads = slices.Compact(loads)
	bySeq := map[key][]Load{}
	var keys []key
	for _, l := range loads {
		if !ValidCard(l.Card) || l.Amount <= 0 || l.Amount > AmountMax {
			r.Rejections = append(r.Rejections, Rejection{"loads", int(l.Sequence), l.Card, ReasonBadLoad})
			continue
		}
		k := key{l.Card, l.Sequence}
		if bySeq[k] == nil {
			keys = append(keys, k)
		}
		bySeq[k] = append(bySeq[k], l)
	}
	credits, unsure = map[string][]Load{}, map[string][]uint16{}
	for _, k := range keys {
		ls := bySeq[k]
		if len(ls) == 1 {
			credits[k.card] = append(credits[k.card], ls[0])
			continue
		}
		for _, l := range ls {
			r.Rejections = append(r.Rejections, Rejection{"loads", int(l.Sequence), l.Card, ReasonBadLoad})
			unsure[k.card] = append(unsure[k.card], l.AfterCounter)
		}
	}
	return credits, unsure
}

// Report renders a result as text, the same bytes for the same result.
func (r Result) Report() []byte {
	var b bytes.Buffer
	for _, c := range r.Cleared {
		fmt.Fprintf(&b, "CLEAR %s %s %d %d %d %s %s %s %s:%d\n", c.Day, c.Card, c.Counter, c.Amount, c.BalanceAfter,
			c.Gate, c.Time.UTC().Format(tapTimeLayout), hex.EncodeToString(c.TAC[:]), c.File, c.Line)
	}
	for _, x := range r.Rejections {
		fmt.Fprintf(&b, "REJECT %s:%d %s %s\n", x.File, x.Line, x.Card, x.Reason)
	}
	for _, g := range r.Gaps {
		fmt.Fprintf(&b, "GAP %s %d-%d\n", g.Card, g.From, g.To)
	}
	for _, c := range r.Blacklist {
		fmt.Fprintf(&b, "BLACKLIST %s\n", c)
	}
	return b.Bytes()
}
