package topup

import (
	"fmt"
	"strconv"
)

// The operator leg's DE48 subelements (docs/wire.md): tag 40 the purse's
// signed request, tag 41 the grant, tag 42 an opening's purse key. Each is
// tag (2) | length (3 digits) | value.

type purseRequestData struct {
	Balance  int64
	Counter  uint16
	Sequence uint32
	MAC      string // 16 hex
}

func (d purseRequestData) Encode() string {
	v := fmt.Sprintf("%012d%05d%010d%s", d.Balance, d.Counter, d.Sequence, d.MAC)
	return fmt.Sprintf("40%03d%s", len(v), v)
}

type purseAnswerData struct {
	BalanceAfter int64
	MAC          string
	PurseKey     string
}

func parsePurseAnswer(s string) (purseAnswerData, error) {
	var a purseAnswerData
	for len(s) > 0 {
		if len(s) < 5 {
			return a, fmt.Errorf("DE48: %d trailing bytes", len(s))
		}
		tag := s[:2]
		n, err := strconv.Atoi(s[2:5])
		if err != nil || n < 0 || n > len(s)-5 {
			return a, fmt.Errorf("DE48: subelement %s has a bad length", tag)
		}
		v := s[5 : 5+n]
		switch tag {
		case "41":
			if len(v) != 28 {
				return a, fmt.Errorf("DE48 tag 41 of %d characters, want 28", len(v))
			}
			if a.BalanceAfter, err = strconv.ParseInt(v[:12], 10, 64); err != nil {
				return a, fmt.Errorf("DE48 tag 41: balance %q", v[:12])
			}
			a.MAC = v[12:]
		case "42":
			a.PurseKey = v
		}
		s = s[5+n:]
	}
	if a.MAC == "" {
		return a, fmt.Errorf("DE48: no grant (tag 41)")
	}
	return a, nil
}
