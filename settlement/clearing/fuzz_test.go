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

// FuzzRead: the reader never panics, and whatever it accepts, writing its
// records back gives the same bytes (so the reader accepts exactly one
// spelling of each file, the one the writer writes).
func FuzzRead(f *testing.F) {
	for _, b := range seedFiles(f) {
		f.Add(b)
		f.Add(b[:len(b)/2])
		recs := records(b)
		f.Add(join(append(recs[:1:1], recs[len(recs)-1])))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
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
