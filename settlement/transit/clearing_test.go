package transit

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// TestClearingFile: each operator's file holds its home taps, the fares it
// pays and those it receives, with totals; the reader recomputes them and
// refuses a file changed anywhere.
func TestClearingFile(t *testing.T) {
	bj := purseOf("0010", "9910000100000000017", 5000)
	sh := purseOf("0021", "9910000200000000093", 5000)
	_, home := taps(t, bj, 1, 300, "001000000007")
	bj.Counter, bj.Balance = 1, 4700
	_, away := taps(t, bj, 2, 400, "002100000001")
	_, visit := taps(t, sh, 1, 250, "001000000007")
	r := Batch{Cards: cards, Masters: masters, Day: "20261204", Files: []InFile{
		file(t, "bj.taps", 1, home[0], visit[0]), file(t, "sh.taps", 1, away...)}}.Ingest()
	if len(r.Cleared) != 4 || len(r.Rejections) != 0 {
		t.Fatalf("%s", r.Report())
	}
	h := ClearingHeader{Day: "20261204", Operator: "0010", Member: "BJT", Institution: "31000001", SwitchInstitution: "00010000"}
	data, tot, err := WriteClearing(h, r.Cleared)
	if err != nil {
		t.Fatal(err)
	}
	want := ClearingTotals{Records: 4, HomeTaps: 1, HomeFen: 300, PaidTaps: 2, PaidFen: 800, ReceivedTaps: 1, ReceivedFen: 250}
	if tot != want {
		t.Fatalf("totals %+v, want %+v\n%s", tot, want, data)
	}
	gh, recs, got, err := ReadClearing(data)
	if err != nil || gh != h || got != want || len(recs) != 4 || recs[3].Kind != KindReceived || recs[3].File != "bj.taps" {
		t.Fatalf("read back: %v %+v %+v\n%s", err, gh, got, data)
	}
	if !strings.HasPrefix(string(data), "H|TCLR1|20261204|0010|BJT|31000001|00010000|156\nD|1|H|9910000100000000017|300|1|4700|001000000007|") {
		t.Fatalf("file:\n%s", data)
	}
	sptc := h
	sptc.Operator, sptc.Member, sptc.Institution = "0021", "SPTC", "31000002"
	sdata, stot, _ := WriteClearing(sptc, r.Cleared)
	if stot.ReceivedFen != 800 || stot.PaidFen != 250 || stot.HomeTaps != 0 {
		t.Fatalf("SPTC %+v\n%s", stot, sdata)
	}
	for name, edit := range map[string]func([]byte) []byte{
		"amount": func(b []byte) []byte { return bytes.Replace(b, []byte("|400|"), []byte("|401|"), 1) },
		"kind":   func(b []byte) []byte { return bytes.Replace(b, []byte("D|1|H|"), []byte("D|1|P|"), 1) },
		"cut":    func(b []byte) []byte { return b[:len(b)-10] },
		"record out": func(b []byte) []byte {
			i := bytes.Index(b, []byte("\nD|2|"))
			j := bytes.Index(b[i+1:], []byte("\n")) + i + 1
			return append(append([]byte{}, b[:i]...), b[j:]...)
		},
	} {
		if _, _, _, err := ReadClearing(edit(bytes.Clone(data))); err == nil {
			t.Errorf("%s changed: read without error", name)
		}
	}
}

// TestLoadLog: approved loads and openings count, a reversed one does not
// (whichever comes first), a declined one does not, and the order of the
// journal does not matter.
func TestLoadLog(t *testing.T) {
	at := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)
	load := func(stan string, pc string, amount int64, seq uint32, after uint16, rc string) journal.Entry {
		return journal.Entry{MTI: "0200", ProcessingCode: pc, Amount: iso8583.Amount(amount), TerminalID: "OPLEG001",
			STAN: stan, TransmissionTime: at.Format("0102150405"), Token: "9910000100000000017", IssuerID: "BJT",
			ResponseCode: rc, PurseLoad: &journal.PurseLoad{Sequence: seq, AfterCounter: after}}
	}
	reversal := func(stan, orig string) journal.Entry {
		return journal.Entry{MTI: "0420", ProcessingCode: iso8583.ProcPurseLoad, Amount: 2000, TerminalID: "OPLEG001",
			STAN: stan, TransmissionTime: at.Format("0102150405"), ResponseCode: "00",
			OriginalSTAN: orig, OriginalTransmissionTime: at.Format("0102150405")}
	}
	entries := []journal.Entry{
		load("000001", iso8583.ProcPurseOpen, 5000, 1, 0, "00"),
		load("000002", iso8583.ProcPurseLoad, 2000, 2, 3, "00"),
		reversal("000003", "000002"),
		load("000004", iso8583.ProcPurseLoad, 3000, 2, 3, "00"),
		load("000005", iso8583.ProcPurseLoad, 9000, 3, 4, "51"),
	}
	want := []Load{{Card: "9910000100000000017", Amount: 5000, AfterCounter: 0, Sequence: 1}, {Card: "9910000100000000017", Amount: 3000, AfterCounter: 3, Sequence: 2}}
	for _, order := range [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {2, 0, 4, 1, 3}} {
		var l LoadLog
		for _, i := range order {
			l.Take(&entries[i])
		}
		if got := l.Loads(); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
			t.Fatalf("order %v: %+v", order, got)
		}
	}
	l := LoadLog{Want: func(card string) bool { return false }}
	l.Take(&entries[0])
	if len(l.Loads()) != 0 {
		t.Fatal("a card not wanted kept")
	}
}

// FuzzReadClearing: the reader never panics, and what it accepts is in
// its one canonical form: written again from what was read, the same bytes.
func FuzzReadClearing(f *testing.F) {
	bj := purseOf("0010", "9910000100000000017", 5000)
	_, home := taps(f, bj, 2, 300, "001000000007")
	r := Batch{Cards: cards, Masters: masters, Files: []InFile{file(f, "bj.taps", 1, home...)}}.Ingest()
	h := ClearingHeader{Day: "20261204", Operator: "0010", Member: "BJT", Institution: "31000001", SwitchInstitution: "00010000"}
	data, _, err := WriteClearing(h, r.Cleared)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	empty, _, _ := WriteClearing(h, nil)
	f.Add(empty)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > fuzzBytesMax {
			return
		}
		gh, recs, tot, err := ReadClearing(data)
		if err != nil {
			return
		}
		again, tot2, err := WriteClearing(gh, clearedOf(recs))
		if err != nil || !bytes.Equal(again, data) || tot != tot2 {
			t.Fatalf("accepted a file it does not write back: %v\n%q\n%q", err, data, again)
		}
	})
}
