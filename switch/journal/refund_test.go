package journal

import (
	"errors"
	"testing"
)

// TestRefundedTotalIsWrittenWithTheRefund: the refunded total of a
// purchase moves only in the batch of an approved refund, survives a
// reopen, and is not written when that batch fails.
func TestRefundedTotalIsWrittenWithTheRefund(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	purchase := newEntry("TERM0001", "000001")
	if err := j.Append(purchase); err != nil {
		t.Fatal(err)
	}
	if got, err := j.RefundedOf(purchase.Key()); err != nil || got != 0 {
		t.Fatalf("before any refund: %d, %v", got, err)
	}
	refund := newEntry("TERM0001", "000002")
	refund.ProcessingCode = "200000"
	if err := j.AppendWith(refund, &Change{Refunded: &Refunded{Original: purchase.Key(), Total: 4_00}}); err != nil {
		t.Fatal(err)
	}
	// The same refund key again fails as a duplicate: nothing of its
	// change is applied either.
	again := newEntry("TERM0001", "000002")
	if err := j.AppendWith(again, &Change{Refunded: &Refunded{Original: purchase.Key(), Total: 9_00}}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	bad := newEntry("TERM0001", "000003")
	if err := j.AppendWith(bad, &Change{Refunded: &Refunded{Original: purchase.Key(), Total: -1}}); err == nil {
		t.Fatal("a negative total was written")
	}
	if _, found, _ := j.Lookup(bad.Key()); found {
		t.Fatal("the entry of a failed batch was written")
	}
	j.Close()

	j = openTest(t, dir)
	defer j.Close()
	if got, err := j.RefundedOf(purchase.Key()); err != nil || got != 4_00 {
		t.Fatalf("after reopen: %d, %v; want 400", got, err)
	}
}
