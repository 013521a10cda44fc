package clearing

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/settlement/internal/testday"
)

// records splits a file into its records, without their newlines.
func records(data []byte) []string {
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func join(recs []string) []byte { return []byte(strings.Join(recs, "\n") + "\n") }

// set returns rec with field f replaced by v, which must be f.width bytes.
func set(rec string, f field, v string) string {
	if len(v) != f.width {
		panic("set: " + v + " is not as wide as " + f.name)
	}
	return rec[:f.start-1] + v + rec[f.end():]
}

// edit returns the issuer golden with record i (0 is the header) changed.
func edit(i int, fn func(string) string) func([]string) []string {
	return func(r []string) []string { r[i] = fn(r[i]); return r }
}

func setAt(i int, f field, v string) func([]string) []string {
	return edit(i, func(s string) string { return set(s, f, v) })
}

// The issuer golden has the header on line 1, detail records on lines 2-8
// (the reversal on line 7), the trailer on line 9.
const trailerLine = 9

// readErrorCase is one way to break the issuer golden and the error the
// reader must give for it.
type readErrorCase struct {
	name      string
	recs      func([]string) []string // changes the records, or
	raw       func([]byte) []byte     // changes the bytes
	line      int
	field     string
	reasonHas string
}

var readErrorCases = []readErrorCase{
	{name: "short record", recs: edit(2, func(s string) string { return s[:299] }), line: 3, reasonHas: "record is 299 bytes"},
	{name: "long record", recs: edit(2, func(s string) string { return s + "X" }), line: 3, reasonHas: "longer than 300"},
	{name: "CR LF", recs: edit(1, func(s string) string { return s + "\r" }), line: 2, reasonHas: "CR LF"},
	{name: "no newline at end", raw: func(b []byte) []byte { return b[:len(b)-1] }, line: trailerLine, reasonHas: "without a newline"},
	{name: "empty file", raw: func([]byte) []byte { return nil }, line: 1, reasonHas: "empty file"},
	{name: "bad digit", recs: setAt(1, dAmount, "00000001234x"), line: 2, field: "amount", reasonHas: "want 12 digits"},
	{name: "seq beyond 64 bits", recs: setAt(1, dJournalSeq, "99999999999999999999"), line: 2, field: "journal seq", reasonHas: "64 bits"},
	{name: "control character", recs: setAt(1, dRRN, "6073\x00010101 "), line: 2, field: "RRN", reasonHas: "printable"},
	{name: "reserved not blank", recs: setAt(3, dReserved, strings.Repeat(" ", 18)+"x"), line: 4, field: "reserved", reasonHas: "spaces"},
	{name: "issuer STAN blank", recs: setAt(2, dIssSTAN, "      "), line: 3, field: "issuer STAN", reasonHas: "want 6 digits"},
	{name: "issuer STAN not digits", recs: setAt(2, dIssSTAN, "00010x"), line: 3, field: "issuer STAN", reasonHas: "want 6 digits"},
	{name: "issuer transmission time blank", recs: setAt(5, dIssTransTime, "          "), line: 6, field: "issuer transmission time", reasonHas: "want 10 digits"},
	{name: "bad flag", recs: setAt(1, dStandIn, "y"), line: 2, field: "stand-in", reasonHas: "want one of"},
	{name: "bad time", recs: setAt(1, dTime, "20261340000000"), line: 2, field: "time", reasonHas: "not a time"},
	{name: "bad card number", recs: setAt(1, dCard, "62220200000000012x4"), line: 2, field: "card number", reasonHas: "622202*********12x4"},
	{name: "indicator against code", recs: setAt(1, dDC, "C"), line: 2, field: "debit/credit", reasonHas: `want "D"`},
	{name: "reversal flag against MTI", recs: setAt(6, dReversal, "N"), line: 7, field: "reversal", reasonHas: "0400"},
	{name: "original on non-reversal", recs: setAt(1, dOrigSTAN, "000001"), line: 2, field: "original STAN", reasonHas: "not a reversal"},
	{name: "reversal without original", recs: setAt(6, dOrigSTAN, "      "), line: 7, field: "original STAN", reasonHas: "want 6"},
	{name: "other member's card", recs: setAt(2, dIssuerInst, "03080000   "), line: 3, field: "issuer institution", reasonHas: "issuer file of 01020000"},
	{name: "other currency", recs: setAt(2, dCurrency, "840"), line: 3, field: "currency", reasonHas: "header's currency is 156"},
	{name: "sequence gap", recs: setAt(2, dSeq, "000000003"), line: 3, field: "sequence", reasonHas: "want 2"},
	{name: "out of order", recs: func(r []string) []string {
		r[1], r[2] = set(r[2], dSeq, "000000001"), set(r[1], dSeq, "000000002")
		return r
	}, line: 3, field: "journal seq", reasonHas: "sorted by node ID"},
	{name: "no header", recs: func(r []string) []string { return r[1:] }, line: 1, reasonHas: "starts with the header"},
	{name: "second header", recs: func(r []string) []string { return append(r[:1], r...) }, line: 2, reasonHas: "second header"},
	{name: "unknown record type", recs: edit(3, func(s string) string { return "X" + s[1:] }), line: 4, reasonHas: "want D or T"},
	{name: "header version 01", recs: setAt(0, hVersion, "01"), line: 1, field: "format version", reasonHas: "version 1: this reader knows version 2 only"},
	{name: "header version 03", recs: setAt(0, hVersion, "03"), line: 1, field: "format version", reasonHas: "version 3"},
	{name: "header file ID", recs: setAt(0, hFileID, "20260314-01020000-ACQ   "), line: 1, field: "file ID", reasonHas: "want"},
	{name: "header creation date", recs: setAt(0, hCreated, "20260315"), line: 1, field: "creation date", reasonHas: "business day"},
	{name: "missing trailer", recs: func(r []string) []string { return r[:len(r)-1] }, line: trailerLine, reasonHas: "without a trailer"},
	{name: "record after trailer", recs: func(r []string) []string { return append(r, r[1]) }, line: trailerLine + 1, reasonHas: "after the trailer"},
	{name: "byte after trailer", raw: func(b []byte) []byte { return append(b, ' ') }, line: trailerLine + 1, reasonHas: "after the trailer"},
	{name: "wrong count", recs: setAt(8, tCount, "000000008"), line: trailerLine, field: "record count", reasonHas: "trailer says 8, the records give 7"},
	{name: "wrong debit total", recs: setAt(8, tDebit, "000000000000636146"), line: trailerLine, field: "debit total", reasonHas: "636145"},
	{name: "wrong credit total", recs: setAt(8, tCredit, "000000000000000000"), line: trailerLine, field: "credit total", reasonHas: "93800"},
	{name: "wrong interchange", recs: setAt(8, tICDebit, "000000000000000000"), line: trailerLine, field: "interchange on debits"},
	{name: "wrong switch fees", recs: setAt(8, tSwRefunded, "000000000000000000"), line: trailerLine, field: "switch fees refunded"},
	{name: "wrong hash total", recs: setAt(8, tHash, "000000000000000001"), line: trailerLine, field: "hash total"},
	{name: "wrong digest", recs: setAt(1, dRRN, "607300010199"), line: trailerLine, field: "digest", reasonHas: "hash to"},
	{name: "digest in upper case", recs: edit(8, func(s string) string {
		f := tDigest
		return set(s, f, strings.ToUpper(s[f.start-1:f.end()]))
	}), line: trailerLine, field: "digest", reasonHas: "lowercase"},
}

func TestReadErrors(t *testing.T) {
	tests := readErrorCases
	golden := sampleFile(t, testday.ICBC, Issuer)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := golden
			if tc.recs != nil {
				data = join(tc.recs(records(golden)))
			} else {
				data = tc.raw(bytes.Clone(golden))
			}
			_, err := Read(bytes.NewReader(data))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want a *clearing.Error", err)
			}
			if e.Line != tc.line || e.Field != tc.field || !strings.Contains(e.Reason, tc.reasonHas) {
				t.Errorf("got %q\nwant line %d field %q reason containing %q", err, tc.line, tc.field, tc.reasonHas)
			}
			if strings.Contains(err.Error(), "6222020000000001234") {
				t.Errorf("the error shows a clear PAN: %v", err)
			}
		})
	}
}

// TestReaderStreams reads record by record and checks that errors stick.
func TestReaderStreams(t *testing.T) {
	data := sampleFile(t, testday.CMB, Acquirer)
	r, err := NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 8 || r.Trailer().Count != 8 {
		t.Errorf("read %d records, trailer count %d", n, r.Trailer().Count)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Errorf("Next after the end: %v", err)
	}
	bad := join(setAt(3, dAmount, "x00000000000")(records(data)))
	r, _ = NewReader(bytes.NewReader(bad))
	var first error
	for range 5 {
		if _, err := r.Next(); err != nil && first == nil {
			first = err
		} else if err != nil && err != first {
			t.Fatalf("error changed from %v to %v", first, err)
		}
	}
	if first == nil {
		t.Fatal("no error")
	}
}

func TestEmptyFile(t *testing.T) {
	h := NewHeader(testday.Day, "03100000", Issuer, testday.Switch)
	data, err := Encode(h, nil)
	if err != nil {
		t.Fatal(err)
	}
	f, err := Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Details) != 0 || f.Trailer.Count != 0 || len(data) != 2*(RecordBytes+1) {
		t.Errorf("empty file: %d details, count %d, %d bytes", len(f.Details), f.Trailer.Count, len(data))
	}
}

type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.n == 0 {
		return 0, errors.New("disk full")
	}
	w.n--
	return len(p), nil
}

func TestWriterErrors(t *testing.T) {
	h := NewHeader(testday.Day, testday.ICBC, Issuer, testday.Switch)
	details := sampleDetails(t, testday.ICBC, Issuer)
	var b bytes.Buffer
	w, err := NewWriter(&b, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteDetail(details[1]); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteDetail(details[0]); err == nil || !strings.Contains(err.Error(), "sorted") {
		t.Errorf("out of order: %v", err)
	}
	other := details[2]
	other.IssuerInstitution = testday.CMB
	if err := w.WriteDetail(other); err == nil || !strings.Contains(err.Error(), "issuer file of") {
		t.Errorf("other member: %v", err)
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteDetail(details[3]); err == nil {
		t.Error("write after close succeeded")
	}
	if _, err := Read(&b); err != nil {
		t.Errorf("file with refused records is not valid: %v", err)
	}

	bad := h
	bad.CreationDate = "20260101"
	if _, err := NewWriter(io.Discard, bad); err == nil {
		t.Error("NewWriter took a bad header")
	}
	w, err = NewWriter(&failWriter{n: 1}, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteDetail(details[0]); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("write error: %v", err)
	}
	if _, err := w.Close(); err == nil {
		t.Error("Close after a failed write succeeded")
	}
}
