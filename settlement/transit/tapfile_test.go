package transit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var testHeader = Header{Operator: "0010", Batch: "001000000007", Sequence: 12, Day: "20261204"}

// taps debits p n times at gate, a minute apart.
func taps(t testing.TB, p Purse, n int, amount int64, gate string) (Purse, []Tap) {
	var out []Tap
	for i := range n {
		var tap Tap
		var err error
		p, tap, err = p.Debit(amount, gate, t0.Add(time.Duration(i)*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, tap)
	}
	return p, out
}

func TestTapFileRoundTrip(t *testing.T) {
	_, ts := taps(t, testPurse(10000, 0), 3, 300, "001000000007")
	data, err := WriteTapFile(testHeader, ts)
	if err != nil {
		t.Fatal(err)
	}
	f, faults, err := ReadTapFile(data)
	if err != nil || len(faults) != 0 {
		t.Fatalf("err %v faults %v", err, faults)
	}
	if f.Header != testHeader || !reflect.DeepEqual(f.Taps, ts) {
		t.Fatalf("read back %+v", f)
	}
	if !bytes.HasSuffix(data, []byte("\n")) || !bytes.Contains(data, []byte("\nZ|3|900|")) {
		t.Fatalf("file:\n%s", data)
	}
}

func TestTapFileRecordFaults(t *testing.T) {
	p, ts := taps(t, testPurse(10000, 0), 3, 300, "001000000007")
	_ = p
	dup := ts[1]
	back := ts[0]
	back.Counter = 1 // valid TAC irrelevant here: the reader checks order
	cases := []struct {
		name   string
		taps   []Tap
		edit   func(string) string // applied to the body lines before the trailer is computed
		faults []RecordFault
		good   int
	}{
		{"duplicate", []Tap{ts[0], ts[1], dup, ts[2]}, nil, []RecordFault{{4, ReasonDuplicate, &dup}}, 3},
		{"counter goes back", []Tap{ts[1], ts[2], ts[0]}, nil, []RecordFault{{4, ReasonCounterBack, &ts[0]}}, 2},
		{"malformed amount", ts, func(s string) string { return strings.Replace(s, "|300|2|", "|3x0|2|", 1) }, []RecordFault{{3, ReasonMalformed, nil}}, 2},
		{"leading zero", ts, func(s string) string { return strings.Replace(s, "|300|2|", "|0300|2|", 1) }, []RecordFault{{3, ReasonMalformed, nil}}, 2},
		{"gate of another operator", ts, func(s string) string {
			return strings.Replace(s, "|300|2|9400|001000000007|", "|300|2|9400|002100000007|", 1)
		}, []RecordFault{{3, ReasonForeignGate, nil}}, 2},
		{"truncated record", ts, func(s string) string { return strings.Replace(s, "|300|2|9400|", "|300|2", 1) }, nil, 2},
		{"upper-case TAC", ts, func(s string) string {
			i := strings.Index(s, "T|9910000100000000017|300|3|")
			j := strings.Index(s[i:], "\n") + i
			return s[:j-16] + strings.ToUpper(s[j-16:j]) + s[j:]
		}, nil, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := writeEdited(t, c.taps, c.edit)
			f, faults, err := ReadTapFile(data)
			if err != nil {
				t.Fatalf("file fault %v", err)
			}
			if c.faults != nil && !reflect.DeepEqual(faults, c.faults) {
				t.Fatalf("faults %v, want %v", faults, c.faults)
			}
			if c.faults == nil && len(faults) != 1 {
				t.Fatalf("faults %v, want one", faults)
			}
			if c.name == "truncated record" && faults[0].Reason != ReasonTruncated {
				t.Fatalf("faults %v", faults)
			}
			if c.good >= 0 && len(f.Taps) != c.good {
				t.Fatalf("%d good records, want %d", len(f.Taps), c.good)
			}
		})
	}
}

// writeEdited writes taps, edits the record lines, and recomputes the
// trailer over the edited body, keeping the count of record lines and the
// total the gate meant.
func writeEdited(t *testing.T, ts []Tap, edit func(string) string) []byte {
	data, err := WriteTapFile(testHeader, ts)
	if err != nil {
		t.Fatal(err)
	}
	if edit == nil {
		return data
	}
	z := bytes.LastIndex(data[:len(data)-1], []byte("\n")) + 1
	body := edit(string(data[:z]))
	var total int64
	for _, x := range ts {
		total += x.Amount
	}
	return []byte(body + trailer(len(ts), total, []byte(body)))
}

func TestTapFileFileFaults(t *testing.T) {
	_, ts := taps(t, testPurse(10000, 0), 3, 300, "001000000007")
	good, _ := WriteTapFile(testHeader, ts)
	z := bytes.LastIndex(good[:len(good)-1], []byte("\n")) + 1
	cases := []struct {
		name string
		data []byte
		want string
		good int
	}{
		{"bad header", append([]byte("H|TAPS2|"), good[8:]...), "bad header", -1},
		{"no header line", []byte("H|TAPS1|1000"), "bad header", -1},
		{"missing trailer", good[:z], "missing trailer", 3},
		{"cut mid-record", good[:z-10], "missing trailer", 2},
		{"digest mismatch", bytes.Replace(good, []byte("|300|2|9400|"), []byte("|300|2|9401|"), 1), "digest mismatch", 3},
		{"count mismatch", []byte(string(good[:z]) + trailer(4, 900, good[:z])), "trailer says 4 records", 3},
		{"total mismatch", []byte(string(good[:z]) + trailer(3, 901, good[:z])), "trailer says 3 records 901", 3},
		{"bytes after trailer", append(bytes.Clone(good), "T|x\n"...), "bad trailer", 3},
		{"trailer without newline", good[:len(good)-1], "missing trailer", 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, _, err := ReadTapFile(c.data)
			var ff *FileFault
			if !errors.As(err, &ff) || !strings.Contains(ff.Reason, c.want) {
				t.Fatalf("err %v, want a file fault %q", err, c.want)
			}
			if c.good < 0 && f != nil {
				t.Fatal("records returned from a file without a header")
			}
			if c.good >= 0 && len(f.Taps) != c.good {
				t.Fatalf("%d good records, want %d", len(f.Taps), c.good)
			}
		})
	}
}

func TestWriteTapFileRefusesBadInput(t *testing.T) {
	_, ts := taps(t, testPurse(10000, 0), 1, 300, "001000000007")
	if _, err := WriteTapFile(Header{Operator: "10", Batch: "001000000007", Day: "20261204"}, ts); err == nil {
		t.Error("bad operator written")
	}
	if _, err := WriteTapFile(Header{Operator: "0010", Batch: "001000000007", Day: "20261340"}, ts); err == nil {
		t.Error("bad day written")
	}
	ts[0].Amount = -5
	if _, err := WriteTapFile(testHeader, ts); err == nil {
		t.Error("negative amount written")
	}
}

// TestTapFileSeedCorpus keeps testdata/ in step with the writer: the good
// example reads back clean.
func TestTapFileSeedCorpus(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "good.taps"))
	if err != nil {
		t.Fatal(err)
	}
	f, faults, err := ReadTapFile(data)
	if err != nil || len(faults) != 0 || len(f.Taps) == 0 {
		t.Fatalf("testdata/good.taps: %v %v", err, faults)
	}
}

const fuzzBytesMax = 64 << 10

func FuzzReadTapFile(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.taps"))
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzBytesMax {
			return
		}
		tf, faults, err := ReadTapFile(data)
		if tf == nil {
			if err == nil {
				t.Fatal("no file and no error")
			}
			return
		}
		for _, x := range faults {
			if x.Line < 2 || x.Reason == "" {
				t.Fatalf("fault %+v", x)
			}
		}
		if len(tf.Taps) != len(tf.Lines) {
			t.Fatal("taps and lines differ")
		}
		// Round trip: the good records written again read back the same.
		again, werr := WriteTapFile(tf.Header, tf.Taps)
		if werr != nil {
			t.Fatalf("a record the reader kept does not write: %v", werr)
		}
		tf2, faults2, err2 := ReadTapFile(again)
		if err2 != nil || len(faults2) != 0 || !reflect.DeepEqual(tf2.Taps, tf.Taps) || tf2.Header != tf.Header {
			t.Fatalf("round trip: %v %v", err2, faults2)
		}
		if err == nil && len(faults) == 0 && !bytes.Equal(again, data) {
			t.Fatalf("a clean file is not in its one canonical form:\n%q\n%q", data, again)
		}
	})
}

func trailer(count int, total int64, body []byte) string {
	sum := sha256.Sum256(body)
	return "Z|" + strconv.Itoa(count) + "|" + strconv.FormatInt(total, 10) + "|" + hex.EncodeToString(sum[:]) + "\n"
}

// TestDocExampleFile: the example file in docs/transit.md is testdata's.
func TestDocExampleFile(t *testing.T) {
	doc, err := os.ReadFile("../../docs/transit.md")
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join("testdata", "good.taps"))
	if err != nil {
		t.Fatal(err)
	}
	var indented strings.Builder
	for _, l := range strings.SplitAfter(string(good), "\n") {
		if l != "" {
			indented.WriteString("    " + l)
		}
	}
	if !strings.Contains(string(doc), indented.String()) {
		t.Fatal("docs/transit.md's example tap file differs from testdata/good.taps")
	}
}
