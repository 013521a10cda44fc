package load

import (
	"fmt"
	"strconv"
	"strings"
)

// Kind is one kind of request the harness sends.
type Kind string

// The kinds, and the card each taps:
//
//	purchase  0200 DE3 000000 on the approve card       want its outcome (00)
//	refund    0200 DE3 200000 on the approve card       want 00
//	topup     0200 DE3 210000 on the approve card       want 00
//	decline   0200 DE3 000000 in turn on insufficient, expired, suspended
//	          and unknown, for more than any of them holds: want each card's
//	          outcome (51, 54, 62, 14)
//	reversal  0400 naming the terminal's oldest approved purchase not yet
//	          reversed (a purchase instead when it has none): want 00. A
//	          switch from before reversals were served answers 12, an error.
//	gate      an offline tap at a metro gate of the six cities (gates.go):
//	          never sent to the switch, so it is not in Table; its weight
//	          sets how many gate taps follow the switch's run
//	load      a phone's top-up of a city transit card through the token
//	          API (loads.go): the bank leg 210000 through the switch's
//	          pipeline and the load 220000 at the operator. Not in Table
//	          either: played after the terminals' run, its weight sets how
//	          many (topup above is a terminal's 210000 alone, no purse)
const (
	KindPurchase Kind = "purchase"
	KindRefund   Kind = "refund"
	KindTopUp    Kind = "topup"
	KindDecline  Kind = "decline"
	KindReversal Kind = "reversal"
	KindGate     Kind = "gate"
	KindLoad     Kind = "load"
)

// kindOrder is the order kinds are listed in reports.
var kindOrder = []Kind{KindPurchase, KindRefund, KindTopUp, KindDecline, KindReversal}

// DefaultMix leaves reversals out, so that it means the same against a
// switch that does not serve them (docs/bench.md).
const DefaultMix = "purchase=80,refund=5,topup=5,decline=10"

// mixWeightTotalMax bounds the sum of weights, and so the length of the
// table that interleaves the kinds.
const mixWeightTotalMax = 10000

// MixEntry is one kind and its weight.
type MixEntry struct {
	Kind   Kind
	Weight int
}

// Mix is the share of each kind, in the order given.
type Mix struct {
	Entries []MixEntry // the kinds sent to the switch
	// Gate is the weight of gate taps, offline: not in Entries, so the
	// switch's load is the same with or without them.
	Gate int
	// Load is the weight of purse loads through the token API, played
	// after the terminals' run: not in Entries either.
	Load int
}

// ParseMix reads "purchase=80,refund=5,...". Weights are positive integers
// summing to at most 10000; each kind at most once.
func ParseMix(s string) (Mix, error) {
	var m Mix
	seen := map[Kind]bool{}
	total := 0
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, weight, ok := strings.Cut(part, "=")
		k := Kind(strings.ToLower(strings.TrimSpace(name)))
		if !ok {
			return Mix{}, fmt.Errorf("-mix: %q is not KIND=WEIGHT", part)
		}
		if !knownKind(k) && k != KindGate && k != KindLoad {
			return Mix{}, fmt.Errorf("-mix: unknown kind %q (want purchase, refund, topup, decline, reversal, gate or load)", name)
		}
		if seen[k] {
			return Mix{}, fmt.Errorf("-mix: %s given twice", k)
		}
		w, err := strconv.Atoi(strings.TrimSpace(weight))
		if err != nil || w < 0 {
			return Mix{}, fmt.Errorf("-mix: weight %q of %s is not a whole number", weight, k)
		}
		seen[k] = true
		total += w
		if total > mixWeightTotalMax {
			return Mix{}, fmt.Errorf("-mix: weights add up to more than %d", mixWeightTotalMax)
		}
		switch {
		case k == KindGate:
			m.Gate = w
		case k == KindLoad:
			m.Load = w
		case w > 0:
			m.Entries = append(m.Entries, MixEntry{Kind: k, Weight: w})
		}
	}
	if total == 0 {
		return Mix{}, fmt.Errorf("-mix %q: no kind has a positive weight", s)
	}
	return m, nil
}

func knownKind(k Kind) bool {
	for _, o := range kindOrder {
		if k == o {
			return true
		}
	}
	return false
}

// Has reports whether k has a positive weight.
func (m Mix) Has(k Kind) bool {
	switch k {
	case KindGate:
		return m.Gate > 0
	case KindLoad:
		return m.Load > 0
	}
	for _, e := range m.Entries {
		if e.Kind == k {
			return true
		}
	}
	return false
}

// String is the mix in -mix form.
func (m Mix) String() string {
	parts := make([]string, len(m.Entries))
	for i, e := range m.Entries {
		parts[i] = fmt.Sprintf("%s=%d", e.Kind, e.Weight)
	}
	if m.Gate > 0 {
		parts = append(parts, fmt.Sprintf("%s=%d", KindGate, m.Gate))
	}
	if m.Load > 0 {
		parts = append(parts, fmt.Sprintf("%s=%d", KindLoad, m.Load))
	}
	return strings.Join(parts, ",")
}

// GateTaps is how many gate taps go with sent requests to the switch: the
// gate's share of the mix, at most GateTapsMax.
func (m Mix) GateTaps(sent int64) int { return m.offline(m.Gate, sent, GateTapsMax) }

// Loads is how many purse loads go with sent requests to the switch: the
// load's share of the mix, at most LoadsMax.
func (m Mix) Loads(sent int64) int { return m.offline(m.Load, sent, LoadsMax) }

// offline is sent × weight / the weights of the kinds sent, at most most.
func (m Mix) offline(weight int, sent int64, most int) int {
	total := 0
	for _, e := range m.Entries {
		total += e.Weight
	}
	if weight == 0 || total == 0 || sent <= 0 {
		return 0
	}
	return int(min(sent*int64(weight)/int64(total), int64(most)))
}

// Table interleaves the kinds into one cycle as long as the sum of the
// weights, each kind appearing exactly its weight times, spread as evenly as
// smooth weighted round-robin spreads them (nginx's upstream balancer).
// Request i is of kind Table[i mod len]: any window of the run holds the mix
// in proportion, without randomness.
func (m Mix) Table() []Kind {
	total := 0
	for _, e := range m.Entries {
		total += e.Weight
	}
	current := make([]int, len(m.Entries))
	table := make([]Kind, 0, total)
	for range total {
		best := 0
		for j, e := range m.Entries {
			current[j] += e.Weight
			if current[j] > current[best] {
				best = j
			}
		}
		current[best] -= total
		table = append(table, m.Entries[best].Kind)
	}
	return table
}
