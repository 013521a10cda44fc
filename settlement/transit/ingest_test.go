package transit

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
)

var masters = map[string][]byte{"0010": testMaster, "0021": []byte("operator 0021 master key, test only")}

// cards is the network's own numbering: configs/bins.yaml and issuers.yaml.
var cards = func() Operators {
	table, err := bintable.Parse(configs.Bins)
	if err != nil {
		panic(err)
	}
	list, err := issuers.Parse(configs.Issuers)
	if err != nil {
		panic(err)
	}
	return NewOperators(table, list)
}()

func ingest(files []InFile, loads []Load) Result {
	return Batch{Cards: cards, Masters: masters, Files: files, Loads: loads}.Ingest()
}

func purseOf(op, card string, balance int64) Purse {
	return Purse{Operator: op, Card: card, Balance: balance, Key: PurseKey(masters[op], card)}
}

func file(t testing.TB, name string, seq uint32, ts ...Tap) InFile {
	h := testHeader
	h.Sequence = seq
	if len(ts) > 0 {
		h.Operator = GateOperator(ts[0].Gate)
		h.Batch = ts[0].Gate
	}
	data, err := WriteTapFile(h, ts)
	if err != nil {
		t.Fatal(err)
	}
	return InFile{Name: name, Data: data}
}

func reasons(r Result) []string {
	var out []string
	for _, x := range r.Rejections {
		out = append(out, x.Reason)
	}
	return out
}

func TestIngestClean(t *testing.T) {
	_, ts := taps(t, purseOf("0010", "9910000100000000017", 5000), 3, 300, "001000000007")
	r := ingest([]InFile{file(t, "a", 1, ts...)}, nil)
	if len(r.Cleared) != 3 || len(r.Rejections) != 0 || len(r.Blacklist) != 0 || len(r.Gaps) != 0 {
		t.Fatalf("%s", r.Report())
	}
}

func TestIngestResentFileClearsOnce(t *testing.T) {
	_, ts := taps(t, purseOf("0010", "9910000100000000017", 5000), 3, 300, "001000000007")
	f := file(t, "a", 1, ts...)
	again := f
	again.Name = "a-resent"
	r := ingest([]InFile{f, again}, nil)
	if len(r.Cleared) != 3 || len(r.Blacklist) != 0 {
		t.Fatalf("%s", r.Report())
	}
	if got := reasons(r); !slices.Equal(got, []string{ReasonResent, ReasonResent, ReasonResent}) {
		t.Fatalf("rejections %v", got)
	}
	var total int64
	for _, c := range r.Cleared {
		total += c.Amount
	}
	if total != 900 {
		t.Fatalf("cleared %d fen, want 900", total)
	}
}

func TestIngestClonedPurse(t *testing.T) {
	p := purseOf("0010", "9910000100000000017", 5000)
	clone := p // the purse copied out of the secure element
	p, a := taps(t, p, 2, 300, "001000000007")
	_, b := taps(t, clone, 2, 500, "001000000008")
	// The same counters 1 and 2 spent twice with different balances.
	r := ingest([]InFile{file(t, "gate7", 1, a...), file(t, "gate8", 1, b...)}, nil)
	if !slices.Equal(r.Blacklist, []string{p.Card}) {
		t.Fatalf("blacklist %v\n%s", r.Blacklist, r.Report())
	}
	if len(r.Cleared) != 0 {
		t.Fatalf("a cloned counter cleared:\n%s", r.Report())
	}
	for _, x := range r.Rejections {
		if x.Reason != ReasonCloned {
			t.Fatalf("%s", r.Report())
		}
	}
	if len(r.Rejections) != 4 {
		t.Fatalf("%s", r.Report())
	}
}

func TestIngestCloneInOneFile(t *testing.T) {
	p := purseOf("0010", "9910000100000000017", 5000)
	_, a := taps(t, p, 1, 300, "001000000007")
	_, b := taps(t, p, 1, 400, "001000000007")
	r := ingest([]InFile{file(t, "gate7", 1, a[0], b[0])}, nil)
	if !slices.Equal(r.Blacklist, []string{p.Card}) || len(r.Cleared) != 0 {
		t.Fatalf("%s", r.Report())
	}
}

func TestIngestBadTACRejectedGoodRecordsClear(t *testing.T) {
	_, ts := taps(t, purseOf("0010", "9910000100000000017", 5000), 3, 300, "001000000007")
	ts[1].TAC[0] ^= 0xff
	r := ingest([]InFile{file(t, "a", 1, ts...)}, nil)
	if len(r.Cleared) != 2 || !slices.Equal(reasons(r), []string{ReasonBadTAC}) || r.Rejections[0].Line != 3 {
		t.Fatalf("%s", r.Report())
	}
	// Counter 2 missing from the clean taps is a gap, and 3 still follows.
	if len(r.Gaps) != 1 || r.Gaps[0] != (Gap{"9910000100000000017", 2, 2}) {
		t.Fatalf("gaps %v", r.Gaps)
	}
}

func TestIngestUnknownCard(t *testing.T) {
	q := Purse{Operator: "0099", Card: "9910009900000000011", Balance: 900, Key: PurseKey([]byte("x"), "9910009900000000011")}
	_, ts := taps(t, q, 1, 300, "001000000007")
	r := ingest([]InFile{file(t, "a", 1, ts...)}, nil)
	if len(r.Cleared) != 0 || !slices.Equal(reasons(r), []string{ReasonUnknownCard}) {
		t.Fatalf("%s", r.Report())
	}
}

// TestOperatorsFromTheBINTable: a card's operator is the operator code of
// the transit member its BIN routes to, not its first digits.
func TestOperatorsFromTheBINTable(t *testing.T) {
	for card, want := range map[string]string{
		"9910000100000000017": "0010", // BJT
		"9910000200000000093": "0021", // SPTC
		"9910000400000000015": "0755", // SZT
		"9910000600000000013": "0757", // FST
		"9910009900000000011": "",     // no BIN
		"6222020000000001234": "",     // a bank card (ICBC debit)
		"991000010000000001x": "",     // not digits
	} {
		got, ok := cards.Of(card)
		if got != want || ok != (want != "") {
			t.Errorf("Of(%s) = %q %v, want %q", card, got, ok, want)
		}
	}
}

func TestIngestBalanceAndLoads(t *testing.T) {
	p := purseOf("0010", "9910000100000000017", 1000)
	p, a := taps(t, p, 1, 300, "001000000007") // 700 after, counter 1
	p.Balance += 2000                          // an online load of 2000 after counter 1
	load := Load{Card: p.Card, Amount: 2000, AfterCounter: 1, Sequence: 1}
	_, b := taps(t, p, 1, 300, "001000000007") // 2400 after, counter 2
	files := []InFile{file(t, "a", 1, a[0], b[0])}
	if r := ingest(files, []Load{load, load}); len(r.Cleared) != 2 || len(r.Rejections) != 0 {
		t.Fatalf("with the load (sent twice):\n%s", r.Report())
	}
	// Without the load, 2400 does not follow from 700: a tampered purse.
	r := ingest(files, nil)
	if !slices.Equal(reasons(r), []string{ReasonBalance}) || !slices.Equal(r.Blacklist, []string{p.Card}) || len(r.Cleared) != 1 {
		t.Fatalf("without the load:\n%s", r.Report())
	}
}

func TestIngestGapBound(t *testing.T) {
	p := purseOf("0010", "9910000100000000017", 1000)
	_, ts := taps(t, p, 4, 100, "001000000007") // 900 800 700 600
	// Counters 2 and 3 missing: 600 <= 900 - 2 - 100 holds.
	r := ingest([]InFile{file(t, "a", 1, ts[0], ts[3])}, nil)
	if len(r.Cleared) != 2 || len(r.Gaps) != 1 || r.Gaps[0] != (Gap{p.Card, 2, 3}) || len(r.Blacklist) != 0 {
		t.Fatalf("%s", r.Report())
	}
	// A purse that gained money across a gap with no load is tampered.
	q := p
	q.Counter, q.Balance = 3, 5000
	_, x := taps(t, q, 1, 100, "001000000007") // counter 4, 4900 after
	r = ingest([]InFile{file(t, "a", 1, ts[0], x[0])}, nil)
	if !slices.Equal(reasons(r), []string{ReasonBalance}) || len(r.Blacklist) != 1 {
		t.Fatalf("%s", r.Report())
	}
}

func TestIngestCounterBackBlacklists(t *testing.T) {
	_, ts := taps(t, purseOf("0010", "9910000100000000017", 5000), 3, 300, "001000000007")
	r := ingest([]InFile{file(t, "a", 1, ts[0], ts[2], ts[1])}, nil)
	if !slices.Equal(reasons(r), []string{ReasonCounterBack}) || len(r.Blacklist) != 1 {
		t.Fatalf("%s", r.Report())
	}
}

func TestIngestFileFaults(t *testing.T) {
	_, ts := taps(t, purseOf("0010", "9910000100000000017", 5000), 2, 300, "001000000007")
	f := file(t, "a", 1, ts...)
	cut := InFile{Name: "cut", Data: f.Data[:len(f.Data)-20]}
	bad := InFile{Name: "bad", Data: []byte("garbage\n")}
	r := ingest([]InFile{cut, bad}, nil)
	if len(r.Cleared) != 2 {
		t.Fatalf("%s", r.Report())
	}
	if got := reasons(r); !slices.Equal(got, []string{"transit: tap file: bad header", "transit: tap file: missing trailer", ReasonTruncated}) {
		t.Fatalf("%q", got)
	}
}

func TestIngestDeterministic(t *testing.T) {
	p := purseOf("0010", "9910000100000000017", 5000)
	clone := p
	_, a := taps(t, p, 3, 300, "001000000007")
	_, b := taps(t, clone, 1, 500, "001000000008")
	_, c := taps(t, purseOf("0021", "9910000200000000093", 900), 2, 200, "001000000007")
	a[2].TAC[3] ^= 1
	files := []InFile{file(t, "x", 1, a...), file(t, "y", 2, b...), file(t, "z", 3, c...), file(t, "x2", 1, a...)}
	loads := []Load{{Card: c[0].Card, Amount: 5, AfterCounter: 1, Sequence: 1}}
	want := ingest(files, loads).Report()
	for i := range 20 {
		shuffled := slices.Clone(files)
		rot := i % len(files)
		shuffled = append(shuffled[rot:], shuffled[:rot]...)
		if i%2 == 1 {
			slices.Reverse(shuffled)
		}
		if got := ingest(shuffled, loads).Report(); !bytes.Equal(got, want) {
			t.Fatalf("order %d:\n%s\nwant\n%s", i, got, want)
		}
	}
	if len(want) == 0 {
		t.Fatal("empty report")
	}
	_ = time.Second
}

func TestIngestBadLoads(t *testing.T) {
	p := purseOf("0010", "9910000100000000017", 1000)
	p, a := taps(t, p, 1, 300, "001000000007")
	p.Balance += 2000
	_, b := taps(t, p, 1, 300, "001000000007")
	good := Load{Card: p.Card, Amount: 2000, AfterCounter: 1, Sequence: 1}
	conflict := good
	conflict.Amount = 9000
	negative := Load{Card: p.Card, Amount: -5, AfterCounter: 1, Sequence: 2}
	files := []InFile{file(t, "a", 1, a[0], b[0])}
	r := ingest(files, []Load{good, conflict, negative})
	// Both loads of sequence 1 are reported and neither counts; the tap
	// after them is not checked against a guess, so it clears and the card
	// stays off the blacklist.
	if len(r.Cleared) != 2 || len(r.Blacklist) != 0 {
		t.Fatalf("%s", r.Report())
	}
	if got := reasons(r); !slices.Equal(got, []string{ReasonBadLoad, ReasonBadLoad, ReasonBadLoad}) ||
		r.Rejections[0].Line != 1 || r.Rejections[1].Line != 1 || r.Rejections[2].Line != 2 {
		t.Fatalf("%s", r.Report())
	}
	// Whatever the order of the loads, the same result.
	want := r.Report()
	for _, order := range [][]Load{{conflict, good, negative}, {negative, conflict, good}, {good, negative, conflict, good}} {
		if got := ingest(files, order).Report(); !bytes.Equal(got, want) {
			t.Fatalf("loads %v:\n%s\nwant\n%s", order, got, want)
		}
	}
	// A conflict elsewhere does not switch off the check: a tap that gained
	// money with no load between is still refused.
	q := purseOf("0010", "9910000100000000025", 1000)
	q, c := taps(t, q, 1, 300, "001000000007")
	q.Balance += 500
	_, d := taps(t, q, 1, 300, "001000000007")
	r = ingest([]InFile{file(t, "q", 1, c[0], d[0])}, []Load{{Card: q.Card, Amount: 1, AfterCounter: 5, Sequence: 1}, {Card: q.Card, Amount: 2, AfterCounter: 5, Sequence: 1}})
	if !slices.Equal(r.Blacklist, []string{q.Card}) {
		t.Fatalf("%s", r.Report())
	}
}

// TestIngestRefusedTapIsNoBase: a tap refused for its balance is not the
// base of the next tap's check: the next is checked against the last tap
// that cleared, as across a gap, and no gap is reported for the counter
// that was seen.
func TestIngestRefusedTapIsNoBase(t *testing.T) {
	p := purseOf("0010", "9910000100000000017", 1000)
	p, ts := taps(t, p, 1, 100, "001000000007") // counter 1, 900
	bad := p
	bad.Balance = 5000                           // a tampered purse
	_, x := taps(t, bad, 1, 100, "001000000007") // counter 2, 4900: refused
	p.Counter = 2
	p.Balance = 800                            // what the honest purse holds after counter 2
	_, y := taps(t, p, 1, 100, "001000000007") // counter 3, 700
	r := ingest([]InFile{file(t, "a", 1, ts[0], x[0], y[0])}, nil)
	if !slices.Equal(reasons(r), []string{ReasonBalance}) || len(r.Cleared) != 2 || len(r.Gaps) != 0 {
		t.Fatalf("%s", r.Report())
	}
	// A tap that follows the refused one (4900 - 100) does not follow the
	// last cleared tap, and is refused too.
	bad.Counter, bad.Balance = 2, 4900
	_, z := taps(t, bad, 1, 100, "001000000007")
	r = ingest([]InFile{file(t, "a", 1, ts[0], x[0], z[0])}, nil)
	if !slices.Equal(reasons(r), []string{ReasonBalance, ReasonBalance}) || len(r.Cleared) != 1 {
		t.Fatalf("%s", r.Report())
	}
}

// TestIngestDayAndOperatorOfFile: with a Day, a file of another business
// day is rejected whole, and so is a file of an operator without a
// master key; the other files clear.
func TestIngestDayAndOperatorOfFile(t *testing.T) {
	_, ts := taps(t, purseOf("0010", "9910000100000000017", 5000), 2, 300, "001000000007")
	good := file(t, "good", 1, ts[0])
	h := testHeader
	h.Day = "20261203"
	other, _ := WriteTapFile(h, ts[1:])
	h = Header{Operator: "0755", Batch: "075500000001", Sequence: 1, Day: "20261204"}
	stranger, _ := WriteTapFile(h, nil)
	r := Batch{Cards: cards, Masters: masters, Day: "20261204", Files: []InFile{good, {"other", other}, {"stranger", stranger}}}.Ingest()
	if len(r.Cleared) != 1 || !slices.Equal(reasons(r), []string{ReasonOtherDay, ReasonUnknownOperator}) || r.Rejections[0].Line != 0 {
		t.Fatalf("%s", r.Report())
	}
}

// TestIngestTimeOutsideTheDay: with DayOf, a tap whose (signed) time is
// not in its file's business day is rejected; the card's other taps clear.
func TestIngestTimeOutsideTheDay(t *testing.T) {
	p := purseOf("0010", "9910000100000000017", 5000)
	p, in := taps(t, p, 1, 300, "001000000007")
	after, late, err := p.Debit(300, "001000000007", t0.Add(16*time.Hour)) // 2026-12-05 00:30 UTC
	if err != nil {
		t.Fatal(err)
	}
	_, next := taps(t, after, 1, 300, "001000000007")
	dayOf := func(at time.Time) string { return at.UTC().Format("20060102") }
	r := Batch{Cards: cards, Masters: masters, Day: "20261204", DayOf: dayOf,
		Files: []InFile{file(t, "a", 1, in[0], late, next[0])}}.Ingest()
	if !slices.Equal(reasons(r), []string{ReasonOutsideDay}) || len(r.Cleared) != 2 || r.Rejections[0].Line != 3 {
		t.Fatalf("%s", r.Report())
	}
}
