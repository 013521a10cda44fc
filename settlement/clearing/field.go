package clearing

import (
	"fmt"
	"strconv"
)

// RecordBytes is the length of every record, not counting its "\n".
const RecordBytes = 300

// kind is how a field's bytes are written (docs/clearing-format.md, "Field
// types").
type kind byte

const (
	kindN kind = 'N' // digits, right-justified, zero-filled
	kindA kind = 'A' // printable ASCII, left-justified, space-filled, never ending in a space
	kindF kind = 'F' // one character from a fixed set
	kindX kind = 'X' // reserved: spaces
)

// field is one field of a record layout. Positions count from 1, as the
// format document does.
type field struct {
	name  string
	start int
	width int
	kind  kind
}

func (f field) end() int { return f.start + f.width - 1 }

// bytes returns the field's slice of a record.
func (f field) bytes(rec []byte) []byte { return rec[f.start-1 : f.end()] }

// Error is a record or file that does not follow the format. It names the
// line and, where there is one, the field and its byte positions.
type Error struct {
	Line   int    // line of the file, from 1; 0 for a record parsed alone
	Record string // "header", "detail" or "trailer"; "" when the record's type is unknown
	Field  string // "" when the error is about the record or the file as a whole
	Start  int    // the field's first and last byte, from 1; 0 with no field
	End    int
	Reason string
}

func (e *Error) Error() string {
	s := "clearing:"
	if e.Line > 0 {
		s += fmt.Sprintf(" line %d", e.Line)
	}
	if e.Record != "" {
		s += fmt.Sprintf(" (%s)", e.Record)
	}
	if e.Field != "" {
		s += fmt.Sprintf(" field %s (bytes %d-%d)", e.Field, e.Start, e.End)
	}
	if e.Line > 0 || e.Record != "" || e.Field != "" {
		s += ":"
	}
	return s + " " + e.Reason
}

func fieldError(record string, f field, format string, args ...any) *Error {
	return &Error{Record: record, Field: f.name, Start: f.start, End: f.end(), Reason: fmt.Sprintf(format, args...)}
}

// encoder writes fields into one record. Values are validated before they
// are encoded, so a value that does not fit is a bug and panics.
type encoder struct{ rec []byte }

func newEncoder(dst []byte) encoder {
	rec := dst[:RecordBytes]
	for i := range rec {
		rec[i] = ' '
	}
	return encoder{rec}
}

func (e encoder) num(f field, v uint64) {
	s := strconv.FormatUint(v, 10)
	if f.kind != kindN || len(s) > f.width {
		panic(fmt.Sprintf("clearing: %d does not fit field %s", v, f.name))
	}
	b := f.bytes(e.rec)
	pad := len(b) - len(s)
	for i := range pad {
		b[i] = '0'
	}
	copy(b[pad:], s)
}

// digits writes a numeric field whose leading zeros are part of the value
// (MTI, STAN, MCC): its width is exact.
func (e encoder) digits(f field, s string) {
	if f.kind != kindN || len(s) != f.width {
		panic(fmt.Sprintf("clearing: %q does not fit field %s", s, f.name))
	}
	copy(f.bytes(e.rec), s)
}

// text writes a left-justified value; the rest of the field stays spaces.
func (e encoder) text(f field, s string) {
	if len(s) > f.width {
		panic(fmt.Sprintf("clearing: %q does not fit field %s", s, f.name))
	}
	copy(f.bytes(e.rec), s)
}

func (e encoder) flag(f field, c byte) { f.bytes(e.rec)[0] = c }

func flagOf(b bool) byte {
	if b {
		return 'Y'
	}
	return 'N'
}

// decoder reads fields out of one record. The first error sticks; the
// rest of the reads return zero values, so a parser reads every field and
// checks the error once.
type decoder struct {
	rec    []byte
	record string
	err    *Error
}

func (d *decoder) fail(f field, format string, args ...any) {
	if d.err == nil {
		d.err = fieldError(d.record, f, format, args...)
	}
}

// num reads a numeric field as a number.
func (d *decoder) num(f field) uint64 {
	b := f.bytes(d.rec)
	if !allDigits(b) {
		d.fail(f, "%q: want %d digits", b, f.width)
		return 0
	}
	v, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		d.fail(f, "%q does not fit in 64 bits", b)
	}
	return v
}

// digits reads a numeric field as its digits; blankOK accepts a field of
// spaces only, returned as "".
func (d *decoder) digits(f field, blankOK bool) string {
	b := f.bytes(d.rec)
	if blankOK && allSpaces(b) {
		return ""
	}
	if !allDigits(b) {
		if blankOK {
			d.fail(f, "%q: want %d digits or spaces", b, f.width)
		} else {
			d.fail(f, "%q: want %d digits", b, f.width)
		}
		return ""
	}
	return string(b)
}

// text reads a left-justified field without its padding.
func (d *decoder) text(f field) string {
	b := f.bytes(d.rec)
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			d.fail(f, "%q: want printable ASCII", b)
			return ""
		}
	}
	n := len(b)
	for n > 0 && b[n-1] == ' ' {
		n--
	}
	return string(b[:n])
}

// flag reads a one-character field that must be one of allowed.
func (d *decoder) flag(f field, allowed string) byte {
	c := f.bytes(d.rec)[0]
	for i := 0; i < len(allowed); i++ {
		if c == allowed[i] {
			return c
		}
	}
	d.fail(f, "%q: want one of %q", string(rune(c)), allowed)
	return 0
}

func (d *decoder) yesNo(f field) bool { return d.flag(f, "YN") == 'Y' }

func (d *decoder) reserved(f field) {
	if b := f.bytes(d.rec); !allSpaces(b) {
		d.fail(f, "reserved bytes must be spaces, found %q", b)
	}
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func allSpaces(b []byte) bool {
	for _, c := range b {
		if c != ' ' {
			return false
		}
	}
	return true
}
