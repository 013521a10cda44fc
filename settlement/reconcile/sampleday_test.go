package reconcile

import (
	"bytes"
	"testing"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement/clearing"
	"github.com/tapswitch/tapswitch/settlement/internal/testday"
)

// TestSampleDayIsClean reconciles the sample day's issuer file for ICBC,
// written from journal entries as cmd/settle writes it, with the ledger
// ICBC keeps of the same day: one posting per approval it was sent (a
// stand-in approval by its advice), the reversed purchase marked reversed
// by the reversal advice, and one time-out the switch reversed, which is
// in no file.
func TestSampleDayIsClean(t *testing.T) {
	sched := testday.Schedule()
	var details []clearing.Detail
	var ledger []LedgerEntry
	for _, tx := range testday.Txns() {
		if tx.IssuerInstitution != testday.ICBC {
			continue
		}
		f, err := sched.For(&tx)
		if err != nil {
			t.Fatal(err)
		}
		d, err := clearing.NewDetail(&tx, f, clearing.Issuer)
		if err != nil {
			t.Fatal(err)
		}
		details = append(details, d)
		if tx.Reversal {
			for i := range ledger {
				if ledger[i].STAN == tx.IssuerSTAN && ledger[i].TransmissionTime == tx.IssuerTransmissionTime {
					ledger[i].Reversed, ledger[i].ReversalDay = true, tx.BusinessDay
				}
			}
			continue
		}
		ledger = append(ledger, LedgerEntry{STAN: tx.IssuerSTAN, TransmissionTime: tx.IssuerTransmissionTime,
			ProcessingCode: tx.ProcessingCode, Amount: tx.Amount, Direction: tx.Direction, RRN: tx.RRN,
			TerminalID: tx.TerminalID, AuthCode: tx.AuthCode, BusinessDay: tx.BusinessDay})
	}
	ledger = append(ledger, LedgerEntry{STAN: "000999", TransmissionTime: "0314063000", ProcessingCode: iso8583.ProcPurchase,
		Amount: 4200, Direction: 'D', BusinessDay: testday.Day, Reversed: true, ReversalDay: testday.Day})
	data, err := clearing.Encode(clearing.NewHeader(testday.Day, testday.ICBC, clearing.Issuer, testday.Switch), details)
	if err != nil {
		t.Fatal(err)
	}
	file, err := clearing.Read(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	r, err := File(ledger, file)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Clean() || r.ReversedNotCleared != 1 || r.LedgerEntries != 7 || r.FileRecords != 7 {
		t.Errorf("sample day:\n%s", r.Text())
	}
}
