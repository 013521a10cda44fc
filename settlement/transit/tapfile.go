package transit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The tap file: what a gate (or an operator's batch of gates) uploads. One
// record per line, fields separated by '|', every line ended by '\n':
//
//	H|TAPS1|<operator 4>|<batch ID 12>|<file sequence 8>|<business day YYYYMMDD>
//	T|<card>|<amount fen>|<counter>|<balance after fen>|<gate 12>|<time YYYYMMDDhhmmss UTC>|<TAC 16 hex>
//	...
//	Z|<record count>|<total amount fen>|<SHA-256 hex of every byte before the Z line>
//
// Numbers are decimal without sign or leading zeros (0 is "0"). A line
// format rather than fixed width because card numbers vary in length and a
// human reads these files at 3 a.m.; the separators can never appear in a
// field (all are digits or hex).
//
// The digest guards the transport; the TAC guards each record. So a file
// whose digest fails, or whose trailer is missing (a truncated upload), is
// reported as such but its well-formed records are still returned: each is
// still checked against its TAC at ingestion, and the operator asks the gate
// to resend.
const (
	tapFileBytesMax   = 16 << 20
	tapFileRecordsMax = 200_000
	tapFileMagic      = "TAPS1"
	tapTimeLayout     = "20060102150405"
	dayLayout         = "20060102"
)

// Header is a tap file's first line.
type Header struct {
	Operator string
	Batch    string // gate or batch ID, 12 digits
	Sequence uint32 // the gate's file sequence number
	Day      string // business day, YYYYMMDD
}

// TapFile is a parsed tap file.
type TapFile struct {
	Header Header
	Taps   []Tap
	Lines  []int // Lines[i] is the line number of Taps[i]
}

// RecordFault is one record refused by the reader.
type RecordFault struct {
	Line   int
	Reason string
	// Tap is the record when it parsed (a duplicate or a counter going
	// back): ingestion judges it against the other files too.
	Tap *Tap
}

// Reasons a record or file is refused, stable strings for reports.
const (
	ReasonMalformed   = "malformed field"
	ReasonTruncated   = "truncated record"
	ReasonDuplicate   = "duplicate card and counter in file"
	ReasonCounterBack = "counter goes back"
	ReasonBadTAC      = "bad TAC"
	ReasonUnknownCard = "unknown card"
	ReasonResent      = "already cleared"
	ReasonCounterGap  = "counter gap"
	ReasonBalance     = "balance does not follow"
	ReasonCloned      = "counter spent twice with different taps"
	ReasonForeignGate = "gate of another operator"
)

// FileFault is a fault of the whole file.
type FileFault struct{ Reason string }

func (f *FileFault) Error() string { return "transit: tap file: " + f.Reason }

// WriteTapFile renders a tap file. It refuses taps that do not validate.
func WriteTapFile(h Header, taps []Tap) ([]byte, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	if len(taps) > tapFileRecordsMax {
		return nil, fmt.Errorf("transit: %d taps over the file's %d", len(taps), tapFileRecordsMax)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "H|%s|%s|%s|%d|%s\n", tapFileMagic, h.Operator, h.Batch, h.Sequence, h.Day)
	var total int64
	for i := range taps {
		t := &taps[i]
		if err := t.Validate(); err != nil {
			return nil, fmt.Errorf("transit: tap %d: %w", i, err)
		}
		total += t.Amount
		fmt.Fprintf(&b, "T|%s|%d|%d|%d|%s|%s|%s\n", t.Card, t.Amount, t.Counter, t.BalanceAfter,
			t.Gate, t.Time.UTC().Format(tapTimeLayout), hex.EncodeToString(t.TAC[:]))
	}
	sum := sha256.Sum256(b.Bytes())
	fmt.Fprintf(&b, "Z|%d|%d|%s\n", len(taps), total, hex.EncodeToString(sum[:]))
	return b.Bytes(), nil
}

func (h *Header) validate() error {
	if !ValidOperator(h.Operator) || !ValidGate(h.Batch) {
		return &FileFault{fmt.Sprintf("bad header: operator %q or batch %q malformed", h.Operator, h.Batch)}
	}
	if _, err := time.Parse(dayLayout, h.Day); err != nil || len(h.Day) != 8 {
		return &FileFault{fmt.Sprintf("bad header: business day %q, want YYYYMMDD", h.Day)}
	}
	return nil
}

// number parses a canonical non-negative decimal up to max.
func number(s string, max uint64) (uint64, bool) {
	if s == "" || len(s) > 20 || (len(s) > 1 && s[0] == '0') || !digits(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n <= max
}

func parseTap(line string) (Tap, bool) {
	f := strings.Split(line, "|")
	if len(f) != 8 || f[0] != "T" {
		return Tap{}, false
	}
	var t Tap
	t.Card = f[1]
	amount, ok1 := number(f[2], AmountMax)
	counter, ok2 := number(f[3], CounterMax)
	bal, ok3 := number(f[4], AmountMax)
	if !ok1 || !ok2 || !ok3 {
		return Tap{}, false
	}
	t.Amount, t.Counter, t.BalanceAfter = int64(amount), uint16(counter), int64(bal)
	t.Gate = f[5]
	at, err := time.Parse(tapTimeLayout, f[6])
	if err != nil || len(f[6]) != len(tapTimeLayout) {
		return Tap{}, false
	}
	t.Time = at.UTC()
	if len(f[7]) != 2*TACBytes || strings.ToLower(f[7]) != f[7] {
		return Tap{}, false
	}
	if _, err := hex.Decode(t.TAC[:], []byte(f[7])); err != nil {
		return Tap{}, false
	}
	if t.Validate() != nil {
		return Tap{}, false
	}
	return t, true
}

// ReadHeader parses a tap file's first line alone; the error is a
// *FileFault.
func ReadHeader(data []byte) (Header, error) {
	nl := bytes.IndexByte(data, '\n')
	if nl < 0 {
		return Header{}, &FileFault{"bad header"}
	}
	hf := strings.Split(string(data[:nl]), "|")
	if len(hf) != 6 || hf[0] != "H" || hf[1] != tapFileMagic {
		return Header{}, &FileFault{"bad header"}
	}
	seq, ok := number(hf[4], 1<<32-1)
	h := Header{Operator: hf[2], Batch: hf[3], Sequence: uint32(seq), Day: hf[5]}
	if !ok || h.validate() != nil {
		return Header{}, &FileFault{"bad header"}
	}
	return h, nil
}

// ReadTapFile parses a tap file. It returns the good records and a fault per
// refused record; err is a *FileFault for a fault of the whole file (bad
// header: nothing is returned; missing trailer, bad trailer, count or total
// or digest mismatch: the good records are still returned, see above).
func ReadTapFile(data []byte) (*TapFile, []RecordFault, error) {
	if len(data) > tapFileBytesMax {
		return nil, nil, &FileFault{"file over the size limit"}
	}
	h, err := ReadHeader(data)
	if err != nil {
		return nil, nil, err
	}
	nl := bytes.IndexByte(data, '\n')
	f := &TapFile{Header: h}
	var faults []RecordFault
	type key struct {
		card    string
		counter uint16
	}
	seen := map[key]bool{}
	last := map[string]uint16{}
	// What the gate wrote, for the trailer: every record line, and the
	// amount of every record that parsed (a malformed one has none).
	var lines int
	var total int64
	malformed := false
	rest := data[nl+1:]
	start := nl + 1
	line := 1
	for len(rest) > 0 {
		line++
		nl := bytes.IndexByte(rest, '\n')
		if nl < 0 {
			// A last line without its end: the upload was cut.
			faults = append(faults, RecordFault{line, ReasonTruncated, nil})
			return f, faults, &FileFault{"missing trailer"}
		}
		text := string(rest[:nl])
		if strings.HasPrefix(text, "Z|") {
			if err := checkTrailer(text, data[:start], lines, total, malformed, len(rest) != nl+1); err != nil {
				return f, faults, err
			}
			return f, faults, nil
		}
		rest = rest[nl+1:]
		start += nl + 1
		if len(f.Taps)+len(faults) >= tapFileRecordsMax {
			return f, faults, &FileFault{"too many records"}
		}
		lines++
		t, ok := parseTap(text)
		if ok {
			total += t.Amount
		} else {
			malformed = true
		}
		switch {
		case !ok && strings.HasPrefix(text, "T|") && strings.Count(text, "|") < 7:
			faults = append(faults, RecordFault{line, ReasonTruncated, nil})
		case !ok:
			faults = append(faults, RecordFault{line, ReasonMalformed, nil})
		case GateOperator(t.Gate) != h.Operator:
			// An operator uploads its own gates' taps: the gate decides who
			// is owed, so a file may not speak for another operator's gates.
			faults = append(faults, RecordFault{line, ReasonForeignGate, nil})
		case seen[key{t.Card, t.Counter}]:
			faults = append(faults, RecordFault{line, ReasonDuplicate, &t})
		case t.Counter < last[t.Card]:
			faults = append(faults, RecordFault{line, ReasonCounterBack, &t})
		default:
			seen[key{t.Card, t.Counter}] = true
			last[t.Card] = t.Counter
			f.Taps = append(f.Taps, t)
			f.Lines = append(f.Lines, line)
		}
	}
	return f, faults, &FileFault{"missing trailer"}
}

func checkTrailer(text string, before []byte, lines int, total int64, malformed, trailing bool) error {
	z := strings.Split(text, "|")
	if len(z) != 4 || trailing {
		return &FileFault{"bad trailer"}
	}
	count, ok1 := number(z[1], tapFileRecordsMax)
	sum, ok2 := number(z[2], 1<<62)
	if !ok1 || !ok2 || len(z[3]) != 2*sha256.Size {
		return &FileFault{"bad trailer"}
	}
	d := sha256.Sum256(before)
	if hex.EncodeToString(d[:]) != z[3] {
		return &FileFault{"digest mismatch"}
	}
	// The trailer counts what the gate wrote, refused records included.
	if int(count) != lines || (!malformed && int64(sum) != total) {
		return &FileFault{fmt.Sprintf("trailer says %d records %d fen, file has %d records %d fen", count, sum, lines, total)}
	}
	return nil
}
