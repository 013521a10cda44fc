package transit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The blacklist file: the cards every gate refuses, published by the
// network in numbered versions and loaded by the gates offline. One record
// per line, fields separated by '|', every line ended by '\n':
//
//	H|BLACK1|<version>|<issued YYYYMMDDhhmmss UTC>|<business day YYYYMMDD>
//	C|<card>|<reason>
//	...
//	Z|<card count>|<SHA-256 hex of every byte before the Z line>
//
// Numbers are decimal without sign or leading zeros, the version 1 or
// more (a gate that holds none holds 0). Cards are in ascending order
// (byte order of their digits, which for numbers of one length is
// numeric order), each once: a file has one canonical form, and a
// duplicate is found in one pass. Reasons are the codes below.
//
// Unlike a tap file, a blacklist is all or nothing: a gate that loaded a
// part of one would let the missing cards through while claiming the
// version. The reader still reports every faulty line (and returns the
// good ones, for a report); a gate refuses a file with any fault and
// keeps the list it holds. Each version replaces the previous whole,
// rather than adding to it, so a gate that missed versions needs only the
// latest, and a card taken off the list (a phone found again) is simply
// absent.
const (
	blacklistBytesMax = 32 << 20
	// BlacklistCardsMax bounds one blacklist.
	BlacklistCardsMax = 1_000_000
	blacklistMagic    = "BLACK1"
)

// BlacklistReason says why a card is on the blacklist.
type BlacklistReason string

// Blacklist reasons.
const (
	// ReasonLost: the phone was reported lost and turned off; its purse
	// may be in a thief's hands (its balance is refunded to the holder).
	ReasonLost BlacklistReason = "lost"
	// ReasonClone: ingestion found the purse cloned or tampered with (a
	// counter spent twice with different taps, a counter going back, a
	// balance that does not follow).
	ReasonClone BlacklistReason = "clone"
)

func (r BlacklistReason) valid() bool { return r == ReasonLost || r == ReasonClone }

// BlacklistHeader is a blacklist file's first line.
type BlacklistHeader struct {
	Version uint32    // 1 or more; a later list has a higher version
	Issued  time.Time // UTC, whole seconds
	Day     string    // the business day it was issued for, YYYYMMDD
}

// BlacklistEntry is one card on the list.
type BlacklistEntry struct {
	Card   string
	Reason BlacklistReason
}

// Blacklist is a parsed blacklist file.
type Blacklist struct {
	Header  BlacklistHeader
	Entries []BlacklistEntry // in card order
	Lines   []int            // Lines[i] is the line of Entries[i]
	// Digest is the SHA-256 the trailer carries, of every byte before it:
	// two files with one digest are one list.
	Digest [sha256.Size]byte
}

// Reasons a blacklist record is refused.
const (
	ReasonBlacklistOrder = "card out of order or listed twice"
)

// BlacklistFault is a fault of a whole blacklist file.
type BlacklistFault struct{ Reason string }

func (f *BlacklistFault) Error() string { return "transit: blacklist file: " + f.Reason }

func (h *BlacklistHeader) validate() error {
	if h.Version == 0 {
		return &BlacklistFault{"bad header: version 0"}
	}
	if h.Issued.Unix() < 0 || h.Issued.Year() > 9999 || h.Issued.Nanosecond() != 0 {
		return &BlacklistFault{"bad header: issued time before 1970, after 9999 or not in whole seconds"}
	}
	if _, err := time.Parse(dayLayout, h.Day); err != nil || len(h.Day) != 8 {
		return &BlacklistFault{fmt.Sprintf("bad header: business day %q, want YYYYMMDD", h.Day)}
	}
	return nil
}

// WriteBlacklist renders a blacklist file, its entries sorted by card. It
// refuses a malformed entry and a card listed twice.
func WriteBlacklist(h BlacklistHeader, entries []BlacklistEntry) ([]byte, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	if len(entries) > BlacklistCardsMax {
		return nil, fmt.Errorf("transit: %d cards over the blacklist's %d", len(entries), BlacklistCardsMax)
	}
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b BlacklistEntry) int { return strings.Compare(a.Card, b.Card) })
	var b bytes.Buffer
	fmt.Fprintf(&b, "H|%s|%d|%s|%s\n", blacklistMagic, h.Version, h.Issued.UTC().Format(tapTimeLayout), h.Day)
	for i, e := range sorted {
		if !ValidCard(e.Card) || !e.Reason.valid() {
			return nil, fmt.Errorf("transit: blacklist entry %+v: card or reason malformed", e)
		}
		if i > 0 && sorted[i-1].Card == e.Card {
			return nil, fmt.Errorf("transit: blacklist lists card %s twice", e.Card)
		}
		fmt.Fprintf(&b, "C|%s|%s\n", e.Card, e.Reason)
	}
	sum := sha256.Sum256(b.Bytes())
	fmt.Fprintf(&b, "Z|%d|%s\n", len(sorted), hex.EncodeToString(sum[:]))
	return b.Bytes(), nil
}

func parseBlacklistHeader(line string) (BlacklistHeader, bool) {
	f := strings.Split(line, "|")
	if len(f) != 5 || f[0] != "H" || f[1] != blacklistMagic {
		return BlacklistHeader{}, false
	}
	version, ok := number(f[2], 1<<32-1)
	issued, err := time.Parse(tapTimeLayout, f[3])
	if !ok || err != nil || len(f[3]) != len(tapTimeLayout) {
		return BlacklistHeader{}, false
	}
	h := BlacklistHeader{Version: uint32(version), Issued: issued.UTC(), Day: f[4]}
	return h, h.validate() == nil
}

func parseBlacklistEntry(line string) (BlacklistEntry, bool) {
	f := strings.Split(line, "|")
	if len(f) != 3 || f[0] != "C" {
		return BlacklistEntry{}, false
	}
	e := BlacklistEntry{Card: f[1], Reason: BlacklistReason(f[2])}
	return e, ValidCard(e.Card) && e.Reason.valid()
}

// ReadBlacklist parses a blacklist file. It returns the good entries and a
// fault per refused line; err is a *BlacklistFault for a fault of the
// whole file (bad header: nothing is returned; missing or bad trailer,
// digest or count mismatch, too big). A file is whole only with no error
// and no fault.
func ReadBlacklist(data []byte) (*Blacklist, []RecordFault, error) {
	if len(data) > blacklistBytesMax {
		return nil, nil, &BlacklistFault{"file over the size limit"}
	}
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return nil, nil, &BlacklistFault{"bad header"}
	}
	h, ok := parseBlacklistHeader(string(data[:nl]))
	if !ok {
		return nil, nil, &BlacklistFault{"bad header"}
	}
	bl := &Blacklist{Header: h}
	var faults []RecordFault
	lines := 0 // record lines, refused ones included: what the trailer counts
	last := ""
	start := nl + 1
	for line := 2; start < len(data); line++ {
		nl := bytes.IndexByte(data[start:], '\n')
		if nl < 0 {
			faults = append(faults, RecordFault{Line: line, Reason: ReasonTruncated})
			return bl, faults, &BlacklistFault{"missing trailer"}
		}
		text := string(data[start : start+nl])
		if strings.HasPrefix(text, "Z|") {
			return bl, faults, checkBlacklistTrailer(bl, text, data[:start], lines, start+nl+1 != len(data))
		}
		start += nl + 1
		if lines++; lines > BlacklistCardsMax {
			return bl, faults, &BlacklistFault{"too many cards"}
		}
		e, ok := parseBlacklistEntry(text)
		switch {
		case !ok:
			faults = append(faults, RecordFault{Line: line, Reason: ReasonMalformed})
		case e.Card <= last:
			faults = append(faults, RecordFault{Line: line, Reason: ReasonBlacklistOrder})
		default:
			last = e.Card
			bl.Entries = append(bl.Entries, e)
			bl.Lines = append(bl.Lines, line)
		}
	}
	return bl, faults, &BlacklistFault{"missing trailer"}
}

func checkBlacklistTrailer(bl *Blacklist, text string, before []byte, lines int, trailing bool) error {
	z := strings.Split(text, "|")
	if len(z) != 3 || trailing {
		return &BlacklistFault{"bad trailer"}
	}
	count, ok := number(z[1], BlacklistCardsMax)
	if !ok || len(z[2]) != 2*sha256.Size || strings.ToLower(z[2]) != z[2] {
		return &BlacklistFault{"bad trailer"}
	}
	d := sha256.Sum256(before)
	if hex.EncodeToString(d[:]) != z[2] {
		return &BlacklistFault{"digest mismatch"}
	}
	bl.Digest = d
	if int(count) != lines {
		return &BlacklistFault{fmt.Sprintf("trailer says %d cards, file has %d", count, lines)}
	}
	return nil
}
