package clearing

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// seedFiles returns the golden files.
func seedFiles(f *testing.F) [][]byte {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.clr"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no golden files: %v", err)
	}
	var out [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// fuzzFileRecordsMax bounds FuzzRead's input to a header, four details and
// the trailer. Numbering, order, agreement with the header, control totals
// and the digest are all at work from two details on; a longer file only
// repeats them and costs time, most of all when the fuzzer minimizes it
// (Go's minimizer is quadratic in the input's length: on the golden files
// it took CI's whole 20 s for 10 executions). FuzzParseRecord covers single
// records, and the property and golden tests long files.
const fuzzFileRecordsMax = 6

// FuzzRead: the reader never panics, and whatever it accepts, writing its
// records back gives the same bytes (so the reader accepts exactly one
// spelling of each file, the one the writer writes). Seeds: each golden
// file cut down to its first details and written again (valid files within
// the bound), a half of one, and its header with its trailer.
func FuzzRead(f *testing.F) {
	for _, b := range seedFiles(f) {
		file, err := Read(bytes.NewReader(b))
		if err != nil {
			f.Fatal(err)
		}
		for n := 0; n <= min(len(file.Details), fuzzFileRecordsMax-2); n++ {
			short, err := Encode(file.Header, file.Details[:n])
			if err != nil {
				f.Fatal(err)
			}
			f.Add(short)
		}
		recs := records(b)
		f.Add(join(recs[:fuzzFileRecordsMax/2]))
		f.Add(join(append(recs[:1:1], recs[len(recs)-1])))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzFileRecordsMax*(RecordBytes+1) {
			return
		}
		file, err := Read(bytes.NewReader(data))
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		again, err := Encode(file.Header, file.Details)
		if err != nil {
			t.Fatalf("accepted file does not write back: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("accepted file writes back differently:\n%q\n%q", data, again)
		}
	})
}

// FuzzParseRecord does the same for single records, where the fuzzer can
// reach far more valid inputs than through a whole file's digest.
func FuzzParseRecord(f *testing.F) {
	for _, b := range seedFiles(f) {
		for _, r := range records(b) {
			f.Add([]byte(r))
		}
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		if len(rec) > 2*RecordBytes { // a record of any other length is refused by its length
			return
		}
		var got string
		switch {
		case len(rec) == 0:
			return
		case rec[0] == 'H':
			h, err := ParseHeader(rec)
			if err != nil {
				return
			}
			got = h.Record()
		case rec[0] == 'D':
			d, err := ParseDetail(rec)
			if err != nil {
				return
			}
			got = d.Record()
		default:
			tr, err := ParseTrailer(rec)
			if err != nil {
				return
			}
			got = tr.Record()
		}
		if got != string(rec) {
			t.Fatalf("record writes back differently:\n%q\n%q", rec, got)
		}
	})
}
