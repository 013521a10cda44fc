package load

import (
	"strings"
	"testing"
)

func TestParseMix(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: DefaultMix, want: "purchase=80,refund=5,topup=5,decline=10"},
		{in: " Purchase = 3 , reversal=1 ", want: "purchase=3,reversal=1"},
		{in: "purchase=1,refund=0", want: "purchase=1"},
		{in: "purchase=1,,decline=2,", want: "purchase=1,decline=2"},
		{in: "", err: "no kind has a positive weight"},
		{in: "refund=0", err: "no kind has a positive weight"},
		{in: "purchase", err: `"purchase" is not KIND=WEIGHT`},
		{in: "purchase=x", err: `weight "x" of purchase is not a whole number`},
		{in: "purchase=-1", err: "not a whole number"},
		{in: "purchase=1,purchase=2", err: "purchase given twice"},
		{in: "balance=1", err: `unknown kind "balance"`},
		{in: "purchase=9000,refund=1001", err: "more than 10000"},
	} {
		m, err := ParseMix(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("ParseMix(%q) error %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("ParseMix(%q): %v", tc.in, err)
		case tc.err == "" && m.String() != tc.want:
			t.Errorf("ParseMix(%q) = %s, want %s", tc.in, m, tc.want)
		}
	}
}

// TestMixTable checks the cycle holds each kind exactly its weight times and
// spreads them: no window of a tenth of the cycle lacks the main kind, and
// the rare kinds are not bunched.
func TestMixTable(t *testing.T) {
	m, _ := ParseMix(DefaultMix)
	table := m.Table()
	if len(table) != 100 {
		t.Fatalf("table of %d, want 100", len(table))
	}
	count := map[Kind]int{}
	for _, k := range table {
		count[k]++
	}
	for _, e := range m.Entries {
		if count[e.Kind] != e.Weight {
			t.Errorf("%s %d times, want %d", e.Kind, count[e.Kind], e.Weight)
		}
	}
	for start := 0; start+10 <= len(table); start++ {
		declines := 0
		for _, k := range table[start : start+10] {
			if k == KindDecline {
				declines++
			}
		}
		if declines > 2 {
			t.Errorf("window at %d holds %d declines: %v", start, declines, table[start:start+10])
		}
	}
	if got := (Mix{Entries: []MixEntry{{KindRefund, 1}}}).Table(); len(got) != 1 || got[0] != KindRefund {
		t.Errorf("single-kind table %v", got)
	}
}
