package issuersim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"time"

	"github.com/tapswitch/tapswitch/internal/durable"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/bintable"
)

// SnapshotFormat names the export layout; ReadSnapshot refuses any other.
const SnapshotFormat = "tapswitch-issuersim-ledger/1"

// ledgerFileBytesMax bounds what ReadSnapshot reads: a full ledger of
// ledgerEntriesMax entries is about 500 MB of JSON.
const ledgerFileBytesMax = 1 << 30

// Snapshot is an issuer's books at one moment, as settlement reconciliation
// and cross-process tests read them. Ledger, Totals, Days, Holds and
// Accounts are taken under one lock and agree with each other (Check);
// Traffic is counted apart and may run a request ahead or behind.
type Snapshot struct {
	Format  string    `json:"format"`
	Issuer  string    `json:"issuer"`
	TakenAt time.Time `json:"taken_at"`
	Cutoff  string    `json:"cutoff"` // e.g. "23:00 Asia/Shanghai"
	Totals  Totals    `json:"totals"`
	Traffic Traffic   `json:"traffic"`
	// Days has one row per business day with a posting or a reversal, in
	// day order.
	Days []DayTotals `json:"days"`
	// Ledger is every approved posting in Seq order, reversed ones included.
	Ledger []LedgerEntry `json:"ledger"`
	// Holds are the purchases and top-ups not reversed, in Seq order.
	Holds []Hold `json:"holds"`
	// Accounts are the cards the ledger touched, in order of first posting.
	Accounts []AccountTotals `json:"accounts"`
	// Loads are a transit operator's granted loads and openings in Seq
	// order, voided ones included; absent for a bank and for an operator
	// that granted none. They move no money of the ledger's: the operator
	// is paid for a load by settlement, not by a hold.
	Loads []LoadEntry `json:"loads,omitempty"`
}

// Totals are the book's control totals, recomputed by Check.
type Totals struct {
	Entries   int            `json:"entries"`
	Reversed  int            `json:"reversed"`
	OpenHolds int            `json:"open_holds"`
	Held      iso8583.Amount `json:"held"`     // the open holds
	Credited  iso8583.Amount `json:"credited"` // refunds not reversed
}

// Traffic counts requests by what happened to their answer. Requests were
// read. Dropped to Late count the requests each fault was applied to (a
// request whose connection ended before its turn counts under none).
// Answered counts responses handed to the writer: 96 ones too, a
// duplicated one once, a garbled one not. An answer is counted before it is
// handed over, so whoever has read it finds it counted.
type Traffic struct {
	Requests     uint64 `json:"requests"`
	Answered     uint64 `json:"answered"`
	Dropped      uint64 `json:"dropped"`
	Errored      uint64 `json:"errored"`
	Disconnected uint64 `json:"disconnected"`
	Duplicated   uint64 `json:"duplicated"`
	Garbled      uint64 `json:"garbled"`
	Late         uint64 `json:"late"`
}

// DayTotals sums one business day. A reversal counts on the day it was
// processed, which may be later than its original's.
type DayTotals struct {
	Day             string         `json:"day"` // YYYYMMDD
	Entries         int            `json:"entries"`
	Debits          iso8583.Amount `json:"debits"`  // purchases and top-ups posted
	Credits         iso8583.Amount `json:"credits"` // refunds posted
	Reversals       int            `json:"reversals"`
	ReversedDebits  iso8583.Amount `json:"reversed_debits"`
	ReversedCredits iso8583.Amount `json:"reversed_credits"`
}

// Hold is an open hold, keyed as the switch keys its request: STAN (DE11)
// and transmission time (DE7), with amount, RRN and terminal to confirm.
type Hold struct {
	Seq              uint64         `json:"seq"`
	BusinessDay      string         `json:"business_day"`
	STAN             string         `json:"stan"`
	TransmissionTime string         `json:"transmission_time"`
	PAN              iso8583.PAN    `json:"pan"` // masked in JSON
	Amount           iso8583.Amount `json:"amount"`
	RRN              string         `json:"rrn"`
	TerminalID       string         `json:"terminal_id"`
	AuthCode         string         `json:"auth_code"`
}

// AccountTotals is one card's standing.
type AccountTotals struct {
	PAN       iso8583.PAN      `json:"pan"` // masked in JSON
	Product   bintable.Product `json:"product"`
	Available iso8583.Amount   `json:"available"`
	Held      iso8583.Amount   `json:"held"`
	Credited  iso8583.Amount   `json:"credited"`
}

// FleetSnapshot is every issuer of a fleet, in start order.
type FleetSnapshot struct {
	Issuers []Snapshot `json:"issuers"`
}

// Snapshot copies the issuer's books.
func (s *Issuer) Snapshot() Snapshot {
	s.mu.Lock()
	snap := Snapshot{
		Format: SnapshotFormat, Issuer: s.id, TakenAt: s.now().UTC(),
		Cutoff: s.book.cutoff.String(),
		// Empty lists, never null, in the JSON.
		Ledger: append([]LedgerEntry{}, s.book.ledger...), Accounts: []AccountTotals{},
	}
	if op := s.book.operator; op != nil && len(op.loads) > 0 {
		snap.Loads = append([]LoadEntry(nil), op.loads...)
	}
	seen := make(map[string]bool)
	for _, e := range snap.Ledger {
		if seen[e.PAN.Clear()] {
			continue
		}
		seen[e.PAN.Clear()] = true
		a := s.book.accounts[e.PAN.Clear()]
		snap.Accounts = append(snap.Accounts, AccountTotals{
			PAN: a.card.PAN, Product: a.card.Product, Available: a.available(), Held: a.held, Credited: a.credited,
		})
	}
	s.mu.Unlock()
	snap.Totals, snap.Days, snap.Holds = summarize(snap.Ledger)
	snap.Traffic = s.traffic()
	return snap
}

func (s *Issuer) traffic() Traffic {
	f := &s.stats.faults
	return Traffic{
		Requests: s.stats.requests.Load(), Answered: s.stats.answered.Load(),
		Dropped: f[faultDrop].Load(), Errored: f[faultError].Load(),
		Disconnected: f[faultDisconnect].Load(), Duplicated: f[faultDuplicate].Load(),
		Garbled: f[faultGarbage].Load(), Late: f[faultLate].Load(),
	}
}

// summarize derives the control totals, day rows and open holds from a
// ledger; Snapshot builds with it and Check recomputes with it.
func summarize(ledger []LedgerEntry) (Totals, []DayTotals, []Hold) {
	var t Totals
	holds := []Hold{}
	days := map[string]*DayTotals{}
	day := func(d string) *DayTotals {
		if days[d] == nil {
			days[d] = &DayTotals{Day: d}
		}
		return days[d]
	}
	for _, e := range ledger {
		t.Entries++
		refund := e.ProcessingCode == iso8583.ProcRefund
		posted := day(e.BusinessDay)
		posted.Entries++
		if refund {
			posted.Credits += e.Amount
		} else {
			posted.Debits += e.Amount
		}
		if e.Reversed {
			t.Reversed++
			rev := day(e.Reversal.BusinessDay)
			rev.Reversals++
			if refund {
				rev.ReversedCredits += e.Amount
			} else {
				rev.ReversedDebits += e.Amount
			}
			continue
		}
		if refund {
			t.Credited += e.Amount
			continue
		}
		t.OpenHolds++
		t.Held += e.Amount
		holds = append(holds, Hold{Seq: e.Seq, BusinessDay: e.BusinessDay, STAN: e.STAN,
			TransmissionTime: e.TransmissionTime, PAN: e.PAN, Amount: e.Amount,
			RRN: e.RRN, TerminalID: e.TerminalID, AuthCode: e.AuthCode})
	}
	rows := make([]DayTotals, 0, len(days))
	for _, d := range days {
		rows = append(rows, *d)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Day < rows[j].Day })
	return t, rows, holds
}

var dayPattern = regexp.MustCompile(`^[0-9]{8}$`)

// Check recomputes everything a snapshot states from its ledger: sequence
// numbers 1..n, each entry's shape, the totals, day rows, open holds and
// the accounts' sums. A snapshot that fails was corrupted or written by a
// buggy issuer.
func (snap Snapshot) Check() error {
	if snap.Format != SnapshotFormat {
		return fmt.Errorf("format %q, want %q", snap.Format, SnapshotFormat)
	}
	for i, e := range snap.Ledger {
		if err := checkEntry(e, uint64(i)+1); err != nil {
			return fmt.Errorf("ledger entry %d: %w", i+1, err)
		}
	}
	for i, e := range snap.Loads {
		if err := checkLoad(e, uint64(i)+1); err != nil {
			return fmt.Errorf("load %d: %w", i+1, err)
		}
	}
	totals, days, holds := summarize(snap.Ledger)
	if snap.Totals != totals {
		return fmt.Errorf("totals %+v, the ledger sums to %+v", snap.Totals, totals)
	}
	if !slices.Equal(snap.Days, days) {
		return fmt.Errorf("day totals %+v, the ledger sums to %+v", snap.Days, days)
	}
	if !slices.Equal(snap.Holds, holds) {
		return fmt.Errorf("%d open holds listed, the ledger has %d (or they differ)", len(snap.Holds), len(holds))
	}
	var held, credited iso8583.Amount
	for _, a := range snap.Accounts {
		held += a.Held
		credited += a.Credited
	}
	if held != totals.Held || credited != totals.Credited {
		return fmt.Errorf("accounts hold %v and are credited %v, the ledger says %v and %v", held, credited, totals.Held, totals.Credited)
	}
	return nil
}

func checkEntry(e LedgerEntry, seq uint64) error {
	switch {
	case e.Seq != seq:
		return fmt.Errorf("seq %d, want %d", e.Seq, seq)
	case !dayPattern.MatchString(e.BusinessDay):
		return fmt.Errorf("business day %q is not YYYYMMDD", e.BusinessDay)
	case e.Amount <= 0:
		return fmt.Errorf("amount %d is not positive", e.Amount)
	case e.ResponseCode != iso8583.RCApproved:
		return fmt.Errorf("response code %q on a posting", e.ResponseCode)
	case e.Reversed != (e.Reversal != Reversal{}):
		return fmt.Errorf("reversed %v disagrees with reversal %+v", e.Reversed, e.Reversal)
	case e.Reversed && !dayPattern.MatchString(e.Reversal.BusinessDay):
		return fmt.Errorf("reversal business day %q is not YYYYMMDD", e.Reversal.BusinessDay)
	}
	return nil
}

func checkLoad(e LoadEntry, seq uint64) error {
	switch {
	case e.Seq != seq:
		return fmt.Errorf("seq %d, want %d", e.Seq, seq)
	case !dayPattern.MatchString(e.BusinessDay):
		return fmt.Errorf("business day %q is not YYYYMMDD", e.BusinessDay)
	case e.ProcessingCode != iso8583.ProcPurseLoad && e.ProcessingCode != iso8583.ProcPurseOpen:
		return fmt.Errorf("processing code %q is no load", e.ProcessingCode)
	case e.Amount <= 0:
		return fmt.Errorf("amount %d is not positive", e.Amount)
	case e.BalanceBefore < 0 || e.BalanceAfter != e.BalanceBefore+int64(e.Amount):
		return fmt.Errorf("balance %d + amount %d is not balance after %d", e.BalanceBefore, e.Amount, e.BalanceAfter)
	case e.Sequence == 0:
		return errors.New("sequence 0")
	case e.ProcessingCode == iso8583.ProcPurseOpen && (e.BalanceBefore != 0 || e.Counter != 0 || e.Sequence != 1):
		return fmt.Errorf("an opening at balance %d, counter %d, sequence %d", e.BalanceBefore, e.Counter, e.Sequence)
	case e.Voided != (e.Void != Reversal{}):
		return fmt.Errorf("voided %v disagrees with void %+v", e.Voided, e.Void)
	case e.Voided && !dayPattern.MatchString(e.Void.BusinessDay):
		return fmt.Errorf("void business day %q is not YYYYMMDD", e.Void.BusinessDay)
	}
	return nil
}

// ReadSnapshot reads one snapshot as WriteLedgerFile and the admin endpoint
// write it, and checks it.
func ReadSnapshot(r io.Reader) (Snapshot, error) {
	lr := &io.LimitedReader{R: r, N: ledgerFileBytesMax + 1}
	dec := json.NewDecoder(lr)
	dec.DisallowUnknownFields()
	var snap Snapshot
	if err := dec.Decode(&snap); err != nil {
		if lr.N <= 0 {
			return Snapshot{}, fmt.Errorf("ledger larger than %d bytes", ledgerFileBytesMax)
		}
		return Snapshot{}, fmt.Errorf("ledger: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Snapshot{}, errors.New("ledger: data after the snapshot")
	}
	if err := snap.Check(); err != nil {
		return Snapshot{}, fmt.Errorf("ledger of %s: %w", snap.Issuer, err)
	}
	return snap, nil
}

// LedgerFileName is the name WriteLedgerFile gives an issuer's file.
func LedgerFileName(issuerID string) string { return "ledger-" + issuerID + ".json" }

// fileSafeID keeps an issuer ID from naming a path outside the directory.
var fileSafeID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// WriteLedgerFile writes snap to dir/ledger-ISSUER.json atomically and
// durably (internal/durable): a crash leaves the old file or the new one,
// never a partial one. It returns the file's path.
func WriteLedgerFile(dir string, snap Snapshot) (path string, err error) {
	if !fileSafeID.MatchString(snap.Issuer) {
		return "", fmt.Errorf("issuer ID %q cannot name a file", snap.Issuer)
	}
	if err := snap.Check(); err != nil {
		// The issuer wrote its own books wrong: a bug, not bad input.
		return "", fmt.Errorf("ledger of %s fails its own check: %w", snap.Issuer, err)
	}
	path = filepath.Join(dir, LedgerFileName(snap.Issuer))
	data, err := json.Marshal(snap)
	if err != nil {
		return "", err
	}
	return path, durable.WriteFile(path, append(data, '\n'), 0o600)
}
