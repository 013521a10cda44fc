package clearing

import (
	"bytes"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/settlement/fees"
	"github.com/tapswitch/tapswitch/settlement/internal/testday"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldens are the files written for the sample day and checked in.
var goldens = []struct {
	institution string
	role        Role
}{
	{testday.ICBC, Issuer},
	{testday.CMB, Acquirer},
}

func goldenPath(inst string, role Role) string {
	return filepath.Join("testdata", FileID(testday.Day, inst, role)+".clr")
}

// sampleDetails returns the records of the sample day for one member's
// file, built as cmd/settle will build them.
func sampleDetails(t testing.TB, inst string, role Role) []Detail {
	t.Helper()
	sched := testday.Schedule()
	var out []Detail
	for _, tx := range testday.Txns() {
		if role == Issuer && tx.IssuerInstitution != inst || role == Acquirer && tx.Acquirer != inst {
			continue
		}
		f, err := sched.For(&tx)
		if err != nil {
			t.Fatal(err)
		}
		d, err := NewDetail(&tx, f, role)
		if err != nil {
			t.Fatal(err)
		}
		d.Seq = uint64(len(out) + 1)
		out = append(out, d)
	}
	return out
}

func sampleFile(t testing.TB, inst string, role Role) []byte {
	t.Helper()
	b, err := Encode(NewHeader(testday.Day, inst, role, testday.Switch), sampleDetails(t, inst, role))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGolden(t *testing.T) {
	for _, g := range goldens {
		got := sampleFile(t, g.institution, g.role)
		path := goldenPath(g.institution, g.role)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from what the writer produces now (run with -update if the change is meant):\n%s", path, got)
		}
		if again := sampleFile(t, g.institution, g.role); !bytes.Equal(again, got) {
			t.Errorf("%s: a second run gave other bytes", path)
		}
	}
}

// TestCardNumbers checks that PANs reach the issuer's file and never the
// acquirer's, which carries the tokens.
func TestCardNumbers(t *testing.T) {
	iss := sampleFile(t, testday.ICBC, Issuer)
	acq := sampleFile(t, testday.CMB, Acquirer)
	for _, tx := range testday.Txns() {
		if bytes.Contains(acq, []byte(tx.PAN.Clear())) {
			t.Errorf("acquirer file holds the PAN of %s", tx.ID())
		}
		if tx.Acquirer == testday.CMB && !bytes.Contains(acq, []byte(tx.Token)) {
			t.Errorf("acquirer file lacks the token of %s", tx.ID())
		}
		if tx.IssuerInstitution == testday.ICBC && !bytes.Contains(iss, []byte(tx.PAN.Clear())) {
			t.Errorf("issuer file lacks the PAN of %s", tx.ID())
		}
	}
}

func TestRoundTrip(t *testing.T) {
	for _, g := range goldens {
		data := sampleFile(t, g.institution, g.role)
		f, err := Read(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		want := sampleDetails(t, g.institution, g.role)
		if !reflect.DeepEqual(f.Details, want) {
			t.Errorf("%s: read back\n%+v\nwant\n%+v", g.role, f.Details, want)
		}
		if f.Header != NewHeader(testday.Day, g.institution, g.role, testday.Switch) {
			t.Errorf("%s: header %+v", g.role, f.Header)
		}
		again, err := Encode(f.Header, f.Details)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data) {
			t.Errorf("%s: write, read, write gave other bytes", g.role)
		}
		for _, d := range f.Details {
			if rec := d.Record(); len(rec) != RecordBytes {
				t.Errorf("record of %d bytes", len(rec))
			}
		}
	}
}

// TestTrailerTotals pins the trailer of the issuer golden to sums worked out
// by hand from the sample day.
func TestTrailerTotals(t *testing.T) {
	f, err := Read(bytes.NewReader(sampleFile(t, testday.ICBC, Issuer)))
	if err != nil {
		t.Fatal(err)
	}
	tr := f.Trailer
	// Debits: purchase 12345, top-up 10000, stand-in 25000, purchase 88800,
	// reversed refund none, purchase 500000. Credits: refund 5000 and the
	// reversal of the 88800 purchase.
	if tr.Count != 7 || tr.DebitTotal != 12345+10000+25000+88800+500000 || tr.CreditTotal != 5000+88800 {
		t.Errorf("count %d debits %d credits %d", tr.Count, tr.DebitTotal, tr.CreditTotal)
	}
	// Interchange: 43 (0.35 %), 10 (MCC 4111 at 0.10 %), 113 (0.45 %), 311,
	// 1300 (capped); on credits 23 (refund) and 311 (reversal).
	if tr.InterchangeDebits != 43+10+113+311+1300 || tr.InterchangeCredits != 23+311 {
		t.Errorf("interchange %d / %d", tr.InterchangeDebits, tr.InterchangeCredits)
	}
	if tr.SwitchFeesCharged != 4+2+3+8+27+150 || tr.SwitchFeesRefunded != 27 {
		t.Errorf("switch fees %d / %d", tr.SwitchFeesCharged, tr.SwitchFeesRefunded)
	}
}

func TestLayouts(t *testing.T) {
	for name, l := range map[string][]field{"header": headerLayout, "detail": detailLayout, "trailer": trailerLayout} {
		next := 1
		for _, f := range l {
			if f.start != next {
				t.Errorf("%s field %s starts at %d, want %d", name, f.name, f.start, next)
			}
			next = f.end() + 1
		}
		if next != RecordBytes+1 {
			t.Errorf("%s layout ends at %d, want %d", name, next-1, RecordBytes)
		}
	}
}

func TestNewDetailRefusesBadTxn(t *testing.T) {
	tx := testday.Txns()[0]
	tx.Amount = 0
	if _, err := NewDetail(&tx, fees.Fees{}, Issuer); err == nil || !strings.Contains(err.Error(), "Amount") {
		t.Errorf("got %v", err)
	}
}

// TestIssuerTrace checks that both roles' records carry the trace the
// switch used towards the issuer, not the terminal's, and that a reversal
// carries its original's, which is how the issuer knows it.
func TestIssuerTrace(t *testing.T) {
	txns := testday.Txns()
	for _, g := range goldens {
		byEntry := map[string]Detail{}
		for _, d := range sampleDetails(t, g.institution, g.role) {
			byEntry[fmt.Sprintf("%s/%d", d.NodeID, d.JournalSeq)] = d
		}
		for _, tx := range txns {
			d, ok := byEntry[tx.ID()]
			if !ok {
				continue
			}
			if d.IssuerSTAN != tx.IssuerSTAN || d.IssuerTransmissionTime != tx.IssuerTransmissionTime {
				t.Errorf("%s %s: issuer trace %s %s, want %s %s", g.role, tx.ID(), d.IssuerSTAN, d.IssuerTransmissionTime,
					tx.IssuerSTAN, tx.IssuerTransmissionTime)
			}
			if d.IssuerTransmissionTime == d.TransmissionTime {
				t.Errorf("%s %s: the issuer's DE7 equals the terminal's; the sample should tell them apart", g.role, tx.ID())
			}
			if !tx.Reversal {
				continue
			}
			for _, o := range txns {
				if o.Key() == tx.Original && (o.IssuerSTAN != d.IssuerSTAN || o.IssuerTransmissionTime != d.IssuerTransmissionTime) {
					t.Errorf("%s reversal %s: issuer trace %s %s, its original's is %s %s", g.role, tx.ID(),
						d.IssuerSTAN, d.IssuerTransmissionTime, o.IssuerSTAN, o.IssuerTransmissionTime)
				}
			}
		}
	}
}

// TestFileSHA256: the whole-file SHA-256 the writer gives for the
// manifest (its trailer digest carried on over the trailer) is the
// SHA-256 of the bytes it wrote, for a file with records and an empty one.
func TestFileSHA256(t *testing.T) {
	for _, details := range [][]Detail{nil, sampleDetails(t, testday.ICBC, Issuer)} {
		var b bytes.Buffer
		w, err := NewWriter(&b, NewHeader(testday.Day, testday.ICBC, Issuer, testday.Switch))
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range details {
			if err := w.WriteDetail(d); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if got, want := w.FileSHA256(), sha256.Sum256(b.Bytes()); got != want {
			t.Errorf("%d records: FileSHA256 %x, want %x", len(details), got, want)
		}
	}
}
