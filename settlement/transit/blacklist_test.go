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

var testBlacklistHeader = BlacklistHeader{Version: 7, Issued: time.Date(2026, 12, 4, 2, 0, 0, 0, time.UTC), Day: "20261204"}

var testEntries = []BlacklistEntry{
	{"0021000000000000017", ReasonLost},
	{"0010000000000000025", ReasonClone},
	{"0755000000000000033", ReasonLost},
}

// TestBlacklistRoundTrip: a list written reads back sorted by card, with
// its header and digest, and the writer's output is the testdata file the
// docs show.
func TestBlacklistRoundTrip(t *testing.T) {
	data, err := WriteBlacklist(testBlacklistHeader, testEntries)
	if err != nil {
		t.Fatal(err)
	}
	bl, faults, err := ReadBlacklist(data)
	if err != nil || len(faults) != 0 {
		t.Fatalf("err %v faults %v", err, faults)
	}
	want := []BlacklistEntry{testEntries[1], testEntries[0], testEntries[2]}
	if bl.Header != testBlacklistHeader || !reflect.DeepEqual(bl.Entries, want) || !reflect.DeepEqual(bl.Lines, []int{2, 3, 4}) {
		t.Fatalf("read back %+v", bl)
	}
	if sum := sha256.Sum256(data[:bytes.Index(data, []byte("\nZ|"))+1]); bl.Digest != sum {
		t.Fatal("digest is not the trailer's")
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "good.blacklist"))
	if err != nil || !bytes.Equal(golden, data) {
		t.Fatalf("testdata/good.blacklist differs from the writer's output (%v):\n%s", err, data)
	}
	doc, err := os.ReadFile("../../docs/transit.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(doc, indent(golden)) {
		t.Fatal("docs/transit.md's example blacklist differs from testdata/good.blacklist")
	}
}

func indent(data []byte) []byte {
	var b bytes.Buffer
	for _, l := range strings.SplitAfter(string(data), "\n") {
		if l != "" {
			b.WriteString("    " + l)
		}
	}
	return b.Bytes()
}

// TestWriteBlacklistRefuses: a card listed twice, a malformed card or
// reason, and a bad header are not written.
func TestWriteBlacklistRefuses(t *testing.T) {
	for name, c := range map[string]struct {
		h BlacklistHeader
		e []BlacklistEntry
	}{
		"twice":       {testBlacklistHeader, []BlacklistEntry{testEntries[0], testEntries[1], testEntries[0]}},
		"bad card":    {testBlacklistHeader, []BlacklistEntry{{"0021x", ReasonLost}}},
		"bad reason":  {testBlacklistHeader, []BlacklistEntry{{"0021000000000000017", "stolen"}}},
		"version 0":   {BlacklistHeader{Version: 0, Issued: testBlacklistHeader.Issued, Day: "20261204"}, nil},
		"bad day":     {BlacklistHeader{Version: 1, Issued: testBlacklistHeader.Issued, Day: "2026-12-04"}, nil},
		"part second": {BlacklistHeader{Version: 1, Issued: testBlacklistHeader.Issued.Add(time.Millisecond), Day: "20261204"}, nil},
	} {
		if _, err := WriteBlacklist(c.h, c.e); err == nil {
			t.Errorf("%s: written", name)
		}
	}
}

// blacklistBody returns the header and card lines of the test list, for
// edits before a trailer is computed.
func blacklistBody(t *testing.T) string {
	data, err := WriteBlacklist(testBlacklistHeader, testEntries)
	if err != nil {
		t.Fatal(err)
	}
	return string(data[:bytes.Index(data, []byte("Z|"))])
}

func blacklistTrailer(count int, body string) string {
	sum := sha256.Sum256([]byte(body))
	return "Z|" + strconv.Itoa(count) + "|" + hex.EncodeToString(sum[:]) + "\n"
}

// TestReadBlacklistFaults: each faulty line is reported with its line and
// reason, the others returned; faults of the whole file are errors.
func TestReadBlacklistFaults(t *testing.T) {
	body := blacklistBody(t)
	lines := strings.SplitAfter(body, "\n") // header, 3 cards, ""
	swapped := lines[0] + lines[2] + lines[1] + lines[3]
	dup := lines[0] + lines[1] + lines[2] + lines[2] + lines[3]
	badReason := strings.Replace(body, "|clone\n", "|stolen\n", 1)
	for _, c := range []struct {
		name   string
		file   string
		faults []RecordFault
		good   int
		err    string
	}{
		{"clean", body + blacklistTrailer(3, body), nil, 3, ""},
		{"out of order", swapped + blacklistTrailer(3, swapped), []RecordFault{{Line: 3, Reason: ReasonBlacklistOrder}}, 2, ""},
		{"twice", dup + blacklistTrailer(4, dup), []RecordFault{{Line: 4, Reason: ReasonBlacklistOrder}}, 3, ""},
		{"unknown reason", badReason + blacklistTrailer(3, badReason), []RecordFault{{Line: 2, Reason: ReasonMalformed}}, 2, ""},
		{"count", body + blacklistTrailer(2, body), nil, 3, "trailer says 2 cards"},
		{"digest", body + blacklistTrailer(3, body+"x"), nil, 3, "digest mismatch"},
		{"tampered card", strings.Replace(body, "0021000000000000017", "0021000000000000018", 1) + blacklistTrailer(3, body), nil, 3, "digest mismatch"},
		{"no trailer", body, nil, 3, "missing trailer"},
		{"cut line", body + "C|0999", []RecordFault{{Line: 5, Reason: ReasonTruncated}}, 3, "missing trailer"},
		{"after the trailer", body + blacklistTrailer(3, body) + "C|0999000000000000017|lost\n", nil, 3, "bad trailer"},
		{"upper-case digest", body + blacklistTrailer(3, body)[:4] + strings.ToUpper(blacklistTrailer(3, body)[4:]), nil, 3, "bad trailer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			bl, faults, err := ReadBlacklist([]byte(c.file))
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("err %v, want %q", err, c.err)
			}
			var bf *BlacklistFault
			if err != nil && !errors.As(err, &bf) {
				t.Fatalf("err %T", err)
			}
			if !reflect.DeepEqual(faults, c.faults) || len(bl.Entries) != c.good {
				t.Fatalf("faults %+v, %d good", faults, len(bl.Entries))
			}
		})
	}
}

// TestReadBlacklistBadHeaders: a file without a good header returns nothing.
func TestReadBlacklistBadHeaders(t *testing.T) {
	body := blacklistBody(t)
	rest := body[strings.Index(body, "\n")+1:]
	for _, h := range []string{
		"", "H|BLACK2|7|20261204020000|20261204", "H|BLACK1|0|20261204020000|20261204",
		"H|BLACK1|07|20261204020000|20261204", "H|BLACK1|4294967296|20261204020000|20261204",
		"H|BLACK1|7|2026120402000|20261204", "H|BLACK1|7|20261204020000|2026120", "H|BLACK1|7|20261204020000",
	} {
		file := h + "\n" + rest
		file += blacklistTrailer(3, file)
		if bl, _, err := ReadBlacklist([]byte(file)); bl != nil || err == nil || !strings.Contains(err.Error(), "bad header") {
			t.Errorf("header %q: %v %v", h, bl, err)
		}
	}
	if _, _, err := ReadBlacklist(make([]byte, blacklistBytesMax+1)); err == nil {
		t.Error("a file over the size limit was read")
	}
}

func FuzzReadBlacklist(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "*.blacklist"))
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
		bl, faults, err := ReadBlacklist(data)
		if bl == nil {
			if err == nil {
				t.Fatal("no list and no error")
			}
			return
		}
		for _, x := range faults {
			if x.Line < 2 || x.Reason == "" {
				t.Fatalf("fault %+v", x)
			}
		}
		if len(bl.Entries) != len(bl.Lines) {
			t.Fatal("entries and lines differ")
		}
		// Round trip: the good entries written again read back the same,
		// clean, in the same order (the reader keeps them in card order).
		again, werr := WriteBlacklist(bl.Header, bl.Entries)
		if werr != nil {
			t.Fatalf("an entry the reader kept does not write: %v", werr)
		}
		bl2, faults2, err2 := ReadBlacklist(again)
		if err2 != nil || len(faults2) != 0 || !reflect.DeepEqual(bl2.Entries, bl.Entries) || bl2.Header != bl.Header {
			t.Fatalf("round trip: %v %v", err2, faults2)
		}
		if err == nil && len(faults) == 0 && (!bytes.Equal(again, data) || bl2.Digest != bl.Digest) {
			t.Fatalf("a clean file is not in its one canonical form:\n%q\n%q", data, again)
		}
	})
}
