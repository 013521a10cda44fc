package transit

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"
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
}

// Ingest is Batch.Ingest with the numbering from before the BIN table: a
// card's operator is its first four digits. Kept for the gate's tests,
// whose cards are numbered so; settlement uses a Batch with Operators.
func Ingest(masters map[string][]byte, files []InFile, loads []Load) Result {
	return Batch{Cards: leadingDigits, Masters: masters, Files: files, Loads: loads}.Ingest()
}

// Ingest verifies and checks the tap files against the operators' master
// keys and the loads. The rules, in order:
//
//  1. a file without a good header is rejected whole; the reader's record
//     faults are rejections;
//  2. a record whose card no operator issued (Operators), or whose
//     operator has no master key, is rejected (unknown card); a record
//     whose TAC does not verify is rejected;
//  3. records with the same card and counter: if identical, the first (in
//     sorted order) clears and the rest are rejected as already cleared (a
//     resent file clears once); if they differ, the purse was cloned or
//     tampered with: every one is rejected and the card blacklisted;
//  4. a counter going back within one gate's file blacklists the card (a
//     purse's counter only rises) and the record is rejected;
//  5. per card, in counter order, a tap that follows the previous one
//     directly must have balance after = previous balance after + loads in
//     between - amount; across a gap (reported) it can be at most that less
//     one fen per missing tap. A tap that breaks this is rejected and the
//     card blacklisted.
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
	// Rule 5.
	credits := loadsByCard(b.Loads, &r)
	for i, c := range unique {
		if i == 0 || unique[i-1].Card != c.Card {
			r.Cleared = append(r.Cleared, c)
			continue
		}
		p := unique[i-1]
		var loaded int64
		for _, l := range credits[c.Card] {
			if l.AfterCounter >= p.Counter && l.AfterCounter < c.Counter {
				loaded += l.Amount
			}
		}
		want := p.BalanceAfter + loaded - c.Amount
		missing := int64(c.Counter) - int64(p.Counter) - 1
		ok := c.BalanceAfter == want
		if missing > 0 {
			r.Gaps = append(r.Gaps, Gap{c.Card, p.Counter + 1, c.Counter - 1})
			ok = c.BalanceAfter <= want-missing
		}
		if !ok {
			black[c.Card] = true
			r.Rejections = append(r.Rejections, Rejection{c.File, c.Line, c.Card, ReasonBalance})
			continue
		}
		r.Cleared = append(r.Cleared, c)
	}
	for c := range black {
		r.Blacklist = append(r.Blacklist, c)
	}
	slices.Sort(r.Blacklist)
	slices.SortFunc(r.Rejections, func(a, b Rejection) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Reason, b.Reason))
	})
	return r
}

// Reasons a whole file is refused at ingestion.
const (
	ReasonOtherDay        = "file of another business day"
	ReasonUnknownOperator = "file of an operator without a master key"
)

// refuseFile is the reason a file with header h is refused whole, or "".
// A file speaks for its operator's gates (ReadTapFile); an operator
// without a master key is not one the clearing knows.
func (b *Batch) refuseFile(h Header) string {
	if b.Day != "" && h.Day != b.Day {
		return ReasonOtherDay
	}
	if _, ok := b.Masters[h.Operator]; !ok {
		return ReasonUnknownOperator
	}
	return ""
}

func compareTap(a, b *Tap) int {
	return cmp.Or(cmp.Compare(a.Card, b.Card), cmp.Compare(a.Counter, b.Counter),
		a.Time.Compare(b.Time), cmp.Compare(a.Gate, b.Gate), cmp.Compare(a.Amount, b.Amount),
		cmp.Compare(a.BalanceAfter, b.BalanceAfter), bytes.Compare(a.TAC[:], b.TAC[:]))
}

// loadsByCard keeps one load per card and sequence. A malformed load, or
// two different loads under one sequence, is reported (file "loads", line
// its index + 1) and not counted.
func loadsByCard(loads []Load, r *Result) map[string][]Load {
	type key struct {
		card string
		seq  uint32
	}
	seen := map[key]Load{}
	out := map[string][]Load{}
	for i, l := range loads {
		if !ValidCard(l.Card) || l.Amount <= 0 || l.Amount > AmountMax {
			r.Rejections = append(r.Rejections, Rejection{"loads", i + 1, l.Card, ReasonBadLoad})
			continue
		}
		if prev, ok := seen[key{l.Card, l.Sequence}]; ok {
			if prev != l {
				r.Rejections = append(r.Rejections, Rejection{"loads", i + 1, l.Card, ReasonBadLoad})
			}
			continue
		}
		seen[key{l.Card, l.Sequence}] = l
		out[l.Card] = append(out[l.Card], l)
	}
	return out
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
