// Package gate plays a metro gate of one city (docs/transit.md). A gate
// cannot wait for a network: it takes each tap offline from the phone's
// purse, refuses a card on its blacklist or a purse short of the fare, and
// keeps the taps it let through until its operator collects them as a tap
// file (settlement/transit), which the operator uploads for clearing.
//
// A gate lives in a directory:
//
//	gate.json         its ID, fare, the sequence of the last tap file written,
//	                  and the version and digest of the blacklist it holds
//	pending.jsonl     the taps since that file, one JSON line each, fsynced per tap
//	out/<ID>-<seq>.taps  the tap files, written whole (temporary file, fsync, rename)
//	blacklist-<version>  the blacklist file it holds, as published
//	                  (settlement/transit), written whole
//
// A crash loses no tap it let through: a tap is on disk before the gate
// opens. A crash while a file is written makes the next file carry the
// same taps again, which clearing counts once (files are resent in the
// real world too).
//
// A gate charges a flat fare at one tap, or a distance fare over two: the
// gate reads the purse to tell which tap this is. A purse that is not in
// (or whose entry is older than JourneyTimeMax: its tap-out was missed)
// taps in: the purse records the entry, the phone saves it, the gate
// opens, and nothing is debited or recorded. A purse that is in taps out:
// the fare from its entry gate to this one, plus the city's maximum fare
// for each tap-out it missed, is debited and recorded as one tap.
package gate

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tapswitch/tapswitch/internal/durable"
	"github.com/tapswitch/tapswitch/settlement/transit"
)

// Errors of a tap or of a blacklist load.
var (
	// ErrBlacklisted refuses a card the gate's blacklist names.
	ErrBlacklisted = errors.New("gate: card is on the blacklist")
	// ErrBlacklistCorrupt refuses a blacklist file with any fault.
	ErrBlacklistCorrupt = errors.New("gate: blacklist file is corrupt")
	// ErrBlacklistOlder refuses a blacklist older than the one the gate
	// holds, or another list under the version it holds.
	ErrBlacklistOlder = errors.New("gate: blacklist is not newer than the one held")
)

// JourneyTimeMax is how long a journey on a distance fare may last (the
// Beijing subway's 4 hours). A purse whose entry is older taps in again,
// and its missed tap-out costs the maximum fare at its next exit.
const JourneyTimeMax = 4 * time.Hour

// Fare is how a gate charges: Flat fen at one tap, or by Distance from a
// tap-in to a tap-out. Exactly one is set.
type Fare struct {
	Flat     int64
	Distance DistanceFare
}

// DistanceFare prices journeys in one city (bench/world's City is one).
type DistanceFare interface {
	// Between is the fare from entry gate to exit gate; false when the
	// entry is not one of the city's gates.
	Between(entry, exit string) (int64, bool)
	// Max is the city's highest fare: what an unknown entry or a missed
	// tap-out costs.
	Max() int64
}

// Flat is a flat fare of fen.
func Flat(fen int64) Fare { return Fare{Flat: fen} }

func (f Fare) validate() error {
	switch {
	case f.Distance != nil && f.Flat != 0:
		return errors.New("a flat fare and a distance fare")
	case f.Distance != nil && (f.Distance.Max() <= 0 || f.Distance.Max() > transit.AmountMax/(transit.MissedExitsMax+1)):
		return fmt.Errorf("maximum fare %d fen out of range", f.Distance.Max())
	case f.Distance == nil && (f.Flat <= 0 || f.Flat > transit.AmountMax):
		return fmt.Errorf("fare %d fen out of range", f.Flat)
	}
	return nil
}

// Gate is one gate, open on its directory. Not safe for concurrent use: a
// gate takes one tap at a time.
type Gate struct {
	dir       string
	state     state
	fare      Fare
	blacklist map[string]transit.BlacklistReason
	pending   []transit.Tap
}

type state struct {
	ID       string `json:"id"`
	Fare     int64  `json:"fare"`               // fen, flat; 0 for a distance fare
	Distance bool   `json:"distance,omitempty"` // the gate charges by distance
	Sequence uint32 `json:"sequence"`           // of the last tap file written
	// The blacklist held: its version (0: none) and its SHA-256, hex.
	BlacklistVersion uint32 `json:"blacklist_version,omitempty"`
	BlacklistDigest  string `json:"blacklist_sha256,omitempty"`
}

// pendingTap is a tap as pending.jsonl holds it.
type pendingTap struct {
	Card         string `json:"card"`
	Amount       int64  `json:"amount"`
	Counter      uint16 `json:"counter"`
	BalanceAfter int64  `json:"balance_after"`
	Gate         string `json:"gate"`
	Time         int64  `json:"time"` // Unix seconds
	TAC          string `json:"tac"`
}

// Open opens the gate in dir, creating it with id and fare if it is new.
// A gate that exists keeps its ID; its fare becomes fare.
func Open(dir, id string, fare Fare) (*Gate, error) {
	if !transit.ValidGate(id) {
		return nil, fmt.Errorf("gate %q: want %d digits, the first %d its operator's", id, transit.GateIDBytes, transit.OperatorIDBytes)
	}
	if err := fare.validate(); err != nil {
		return nil, fmt.Errorf("gate %s: %w", id, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "out"), 0o700); err != nil {
		return nil, fmt.Errorf("gate: %w", err)
	}
	g := &Gate{dir: dir, state: state{ID: id, Fare: fare.Flat, Distance: fare.Distance != nil}, fare: fare}
	data, err := os.ReadFile(filepath.Join(dir, "gate.json"))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("gate: %w", err)
	default:
		var s state
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, fmt.Errorf("gate %s: gate.json: %w", dir, err)
		}
		if s.ID != id {
			return nil, fmt.Errorf("gate %s is gate %s, not %s", dir, s.ID, id)
		}
		g.state.Sequence = s.Sequence
		g.state.BlacklistVersion, g.state.BlacklistDigest = s.BlacklistVersion, s.BlacklistDigest
	}
	if err := g.openBlacklist(); err != nil {
		return nil, err
	}
	if err := writeFileSynced(filepath.Join(dir, "gate.json"), mustJSON(g.state)); err != nil {
		return nil, err
	}
	pending := filepath.Join(dir, "pending.jsonl")
	good, err := readPending(pending)
	if err != nil {
		return nil, err
	}
	if good != nil {
		// Rewritten without a torn last line, so the next tap starts a line.
		if err := writeFileSynced(pending, good); err != nil {
			return nil, err
		}
	}
	if g.pending, err = parsePendingFile(pending, good); err != nil {
		return nil, err
	}
	return g, nil
}

// ID returns the gate's ID.
func (g *Gate) ID() string { return g.state.ID }

// Pending returns how many taps wait for the next tap file.
func (g *Gate) Pending() int { return len(g.pending) }

// BlacklistVersion returns the version of the blacklist the gate holds, 0
// for none.
func (g *Gate) BlacklistVersion() uint32 { return g.state.BlacklistVersion }

// LoadBlacklist makes the blacklist file data the gate's list
// (docs/transit.md, "The blacklist file"). It refuses, keeping the list it
// holds, a file with any fault (ErrBlacklistCorrupt) and a version older
// than the one held or another list under it (ErrBlacklistOlder); the
// list it holds again is a no-op. An accepted list is on disk before it
// is used: the file, then gate.json, then the old file is removed.
func (g *Gate) LoadBlacklist(data []byte) error {
	bl, err := readWholeBlacklist(data)
	if err != nil {
		return fmt.Errorf("gate %s keeps blacklist version %d: %w", g.state.ID, g.state.BlacklistVersion, err)
	}
	v, digest := bl.Header.Version, hex.EncodeToString(bl.Digest[:])
	switch held := g.state.BlacklistVersion; {
	case v == held && digest == g.state.BlacklistDigest:
		return nil
	case v <= held:
		return fmt.Errorf("gate %s keeps blacklist version %d, refused version %d: %w", g.state.ID, held, v, ErrBlacklistOlder)
	}
	if err := writeFileSynced(filepath.Join(g.dir, blacklistName(v)), data); err != nil {
		return err
	}
	next := g.state
	next.BlacklistVersion, next.BlacklistDigest = v, digest
	if err := writeFileSynced(filepath.Join(g.dir, "gate.json"), mustJSON(next)); err != nil {
		return err
	}
	old := g.state.BlacklistVersion
	g.state = next
	g.blacklist = blacklistMap(bl)
	if old != 0 {
		// A file left by a failed removal is never read: gate.json names
		// the one the gate holds.
		_ = os.Remove(filepath.Join(g.dir, blacklistName(old)))
	}
	return nil
}

// openBlacklist reads back the blacklist gate.json says the gate holds.
func (g *Gate) openBlacklist() error {
	v := g.state.BlacklistVersion
	if v == 0 {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(g.dir, blacklistName(v)))
	if err != nil {
		return fmt.Errorf("gate %s: the blacklist it holds: %w", g.state.ID, err)
	}
	bl, err := readWholeBlacklist(data)
	if err == nil && (bl.Header.Version != v || hex.EncodeToString(bl.Digest[:]) != g.state.BlacklistDigest) {
		err = fmt.Errorf("version %d digest %x, gate.json says version %d digest %s", bl.Header.Version, bl.Digest, v, g.state.BlacklistDigest)
	}
	if err != nil {
		return fmt.Errorf("gate %s: the blacklist it holds, %s: %w", g.state.ID, blacklistName(v), err)
	}
	g.blacklist = blacklistMap(bl)
	return nil
}

// readWholeBlacklist reads a blacklist file that has no fault at all.
func readWholeBlacklist(data []byte) (*transit.Blacklist, error) {
	bl, faults, err := transit.ReadBlacklist(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBlacklistCorrupt, err)
	}
	if len(faults) > 0 {
		return nil, fmt.Errorf("%w: line %d: %s (%d faulty lines)", ErrBlacklistCorrupt, faults[0].Line, faults[0].Reason, len(faults))
	}
	return bl, nil
}

func blacklistMap(bl *transit.Blacklist) map[string]transit.BlacklistReason {
	m := make(map[string]transit.BlacklistReason, len(bl.Entries))
	for _, e := range bl.Entries {
		m[e.Card] = e.Reason
	}
	return m
}

func blacklistName(version uint32) string { return fmt.Sprintf("blacklist-%010d", version) }

// Tap takes the fare from purse p at time at, or at a distance gate
// records its tap-in (see the package doc): then the tap returned is the
// zero Tap (counter 0) and the purse after is in. The phone's save, given
// the purse after, runs before the tap leaves the phone; the gate then
// records a debit on disk before it opens. On any error the gate stays
// shut and records nothing: a blacklisted card or a short purse leaves the
// purse as it was; a failed save means the tap never left the phone.
func (g *Gate) Tap(p transit.Purse, save func(transit.Purse) error, at time.Time) (transit.Purse, transit.Tap, error) {
	if reason, listed := g.blacklist[p.Card]; listed {
		return p, transit.Tap{}, fmt.Errorf("%w (%s)", ErrBlacklisted, reason)
	}
	var after transit.Purse
	var tap transit.Tap
	var err error
	switch d := g.fare.Distance; {
	case d == nil:
		after, tap, err = p.Debit(g.fare.Flat, g.state.ID, at)
	case !p.In() || at.Sub(p.EntryTime) > JourneyTimeMax:
		if after, err = p.Enter(g.state.ID, at); err != nil {
			return p, transit.Tap{}, err
		}
		if err := save(after); err != nil {
			return p, transit.Tap{}, fmt.Errorf("gate %s: the phone could not save its purse: %w", g.state.ID, err)
		}
		return after, transit.Tap{}, nil
	default:
		fare, ok := d.Between(p.EntryGate, g.state.ID)
		if !ok {
			fare = d.Max() // an entry this city does not know
		}
		after, tap, err = p.Exit(fare+int64(p.MissedExits)*d.Max(), g.state.ID, at)
	}
	if err != nil {
		return p, transit.Tap{}, err
	}
	if err := save(after); err != nil {
		return p, transit.Tap{}, fmt.Errorf("gate %s: the phone could not save its purse: %w", g.state.ID, err)
	}
	if err := g.record(tap); err != nil {
		return after, transit.Tap{}, err
	}
	return after, tap, nil
}

// record appends tap to pending.jsonl and syncs it.
func (g *Gate) record(tap transit.Tap) error {
	line := mustJSON(pendingTap{Card: tap.Card, Amount: tap.Amount, Counter: tap.Counter,
		BalanceAfter: tap.BalanceAfter, Gate: tap.Gate, Time: tap.Time.Unix(), TAC: hex.EncodeToString(tap.TAC[:])})
	f, err := os.OpenFile(filepath.Join(g.dir, "pending.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("gate: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("gate: record tap: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("gate: record tap: %w", err)
	}
	g.pending = append(g.pending, tap)
	return nil
}

// WriteTapFile writes the pending taps as the gate's next tap file for
// business day day (YYYYMMDD), and returns its path. A day without taps
// gets a file with none, so the operator sees the gate was alive.
func (g *Gate) WriteTapFile(day string) (string, error) {
	seq := g.state.Sequence + 1
	data, err := transit.WriteTapFile(transit.Header{Operator: transit.GateOperator(g.state.ID), Batch: g.state.ID,
		Sequence: seq, Day: day}, g.pending)
	if err != nil {
		return "", fmt.Errorf("gate %s: %w", g.state.ID, err)
	}
	path := filepath.Join(g.dir, "out", fmt.Sprintf("%s-%08d.taps", g.state.ID, seq))
	if err := writeFileSynced(path, data); err != nil {
		return "", err
	}
	next := g.state
	next.Sequence = seq
	if err := writeFileSynced(filepath.Join(g.dir, "gate.json"), mustJSON(next)); err != nil {
		return "", err
	}
	g.state = next
	if err := writeFileSynced(filepath.Join(g.dir, "pending.jsonl"), nil); err != nil {
		return "", err
	}
	g.pending = nil
	return path, nil
}

// readPending returns the whole lines of pending.jsonl, nil if it does
// not exist. A last line without its newline is a tap whose write a crash
// cut short: the gate never opened for it, so it is dropped.
func readPending(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gate: %w", err)
	}
	return data[:bytes.LastIndexByte(data, '\n')+1], nil
}

// parsePendingFile parses the whole lines of pending.jsonl; a bad line is
// an error.
func parsePendingFile(path string, data []byte) ([]transit.Tap, error) {
	var taps []transit.Tap
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		tap, err := parsePending(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("gate: %s line %d: %w", path, n, err)
		}
		taps = append(taps, tap)
	}
	return taps, sc.Err()
}

func parsePending(line []byte) (transit.Tap, error) {
	var p pendingTap
	if err := json.Unmarshal(line, &p); err != nil {
		return transit.Tap{}, err
	}
	t := transit.Tap{Card: p.Card, Amount: p.Amount, Counter: p.Counter, BalanceAfter: p.BalanceAfter,
		Gate: p.Gate, Time: time.Unix(p.Time, 0).UTC()}
	tac, err := hex.DecodeString(p.TAC)
	if err != nil || len(tac) != transit.TACBytes {
		return transit.Tap{}, errors.New("TAC is not 8 bytes of hex")
	}
	copy(t.TAC[:], tac)
	return t, t.Validate()
}

// writeFileSynced replaces path with data durably (internal/durable).
func writeFileSynced(path string, data []byte) error {
	if err := durable.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("gate: write %s: %w", path, err)
	}
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed structs of strings and numbers are marshalled
	}
	return b
}
