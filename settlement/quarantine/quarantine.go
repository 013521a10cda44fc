package quarantine

import (
	"fmt"

	"github.com/tapswitch/tapswitch/settlement"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// Reason is why a record is quarantined; the values are stable, written in
// the exceptions report for programs to match on.
type Reason string

// The reasons; the package doc says what each means.
const (
	IssuerNotMember     Reason = "issuer-not-member"
	BadField            Reason = "bad-field"
	AcquirerIsSwitch    Reason = "acquirer-is-switch"
	AcquirerNotMember   Reason = "acquirer-not-member"
	OriginalQuarantined Reason = "original-quarantined"
	ReversalQuarantined Reason = "reversal-quarantined"
)

// Fault is why one record cannot settle.
type Fault struct {
	Reason Reason
	Detail string // for people: the field or party at fault
}

// RecordsMax bounds the records with a fault of their own in one day. More
// than that is not a few bad records but a wrong configuration (an issuers
// file missing a member, the wrong switch institution), which must fail the
// run rather than set aside a bank's whole day.
const RecordsMax = 10_000

// Members is who a settling record may name: the network's members and
// the network's own institution, which is never a party.
type Members struct {
	switchInst   string
	issuers      map[string]string // issuer ID -> institution
	institutions map[string]bool
}

// NewMembers takes the network's institution and its members' institutions
// by issuer ID (configs/issuers.yaml).
func NewMembers(switchInst string, institutionOf map[string]string) *Members {
	m := &Members{switchInst: switchInst, issuers: map[string]string{}, institutions: map[string]bool{}}
	for id, inst := range institutionOf {
		m.issuers[id] = inst
		m.institutions[inst] = true
	}
	return m
}

// Institution returns the institution of a member issuer ID.
func (m *Members) Institution(issuerID string) (string, bool) {
	inst, ok := m.issuers[issuerID]
	return inst, ok
}

// Screen returns the fault of a settling entry (settlement.Settles) as far
// as the entry alone can tell, or nil.
func (m *Members) Screen(e *journal.Entry) *Fault {
	inst, ok := m.issuers[e.IssuerID]
	if !ok {
		return &Fault{IssuerNotMember, fmt.Sprintf("issuer %q is not a member of the network", e.IssuerID)}
	}
	orig, _ := e.OriginalKey()
	if err := settlement.CheckEntry(e, settlement.Supplied{IssuerInstitution: inst, Original: orig}); err != nil {
		return &Fault{BadField, err.Error()}
	}
	switch {
	case e.Acquirer == m.switchInst:
		return &Fault{AcquirerIsSwitch, fmt.Sprintf("acquirer (DE32) %s is the network's own institution, not a bank", e.Acquirer)}
	case !m.institutions[e.Acquirer]:
		return &Fault{AcquirerNotMember, fmt.Sprintf("acquirer (DE32) %s is no member's institution", e.Acquirer)}
	}
	return nil
}

// Sorter sorts a day's settling entries into those that settle and those
// quarantined, over two passes (see the package doc).
type Sorter struct {
	m *Members
	// faultyOriginals holds the keys of originals with a fault of their
	// own, faultyReversals the originals' keys named by reversals with a
	// fault of their own; each maps to the faulty record's node/seq.
	faultyOriginals map[journal.Key]string
	faultyReversals map[journal.Key]string
	faulty          int
}

// NewSorter starts the sorting of one day.
func NewSorter(m *Members) *Sorter {
	return &Sorter{m: m, faultyOriginals: map[journal.Key]string{}, faultyReversals: map[journal.Key]string{}}
}

// Survey is the first pass: call it with every settling entry of the day.
// It fails once more than RecordsMax entries have faults of their own.
func (s *Sorter) Survey(e *journal.Entry) error {
	f := s.m.Screen(e)
	if f == nil {
		return nil
	}
	s.faulty++
	if s.faulty > RecordsMax {
		return fmt.Errorf("more than %d records of the day cannot settle (the last, %s/%d: %s: %s): check the members and institution configured, not the records",
			RecordsMax, e.NodeID, e.Seq, f.Reason, f.Detail)
	}
	id := fmt.Sprintf("%s/%d", e.NodeID, e.Seq)
	if orig, ok := e.OriginalKey(); ok && isReversal(e) {
		s.faultyReversals[orig] = id
	} else if !isReversal(e) {
		s.faultyOriginals[e.Key()] = id
	}
	return nil
}

// Decide is the second pass: call it with every settling entry of the day,
// after Survey has seen them all. It returns the fault that keeps e out of
// the day's settlement, or nil if e settles.
func (s *Sorter) Decide(e *journal.Entry) *Fault {
	if f := s.m.Screen(e); f != nil {
		return f
	}
	if !isReversal(e) {
		if id, ok := s.faultyReversals[e.Key()]; ok {
			return &Fault{ReversalQuarantined, fmt.Sprintf("its reversal %s is quarantined", id)}
		}
		return nil
	}
	orig, _ := e.OriginalKey() // Screen passed: a reversal names its original
	if id, ok := s.faultyOriginals[orig]; ok {
		return &Fault{OriginalQuarantined, fmt.Sprintf("its original %s is quarantined", id)}
	}
	if id, ok := s.faultyReversals[orig]; ok {
		return &Fault{OriginalQuarantined, fmt.Sprintf("its original is quarantined with its other reversal %s", id)}
	}
	return nil
}

func isReversal(e *journal.Entry) bool {
	r, _ := settlement.ClassifyMTI(e.MTI)
	return r
}
