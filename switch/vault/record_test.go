package vault

import (
	"bytes"
	"testing"
	"time"
)

func sampleRecord() record {
	return record{
		status: StatusSuspended, domain: Domain{ContactlessOnly: true},
		cardExpiry: "2812", tokenExpiry: "2706",
		createdAt: time.Date(2026, 3, 14, 9, 26, 53, 5, time.UTC),
		deviceID:  "device-a", wallet: "mi-account-77", requestorID: "50110030273",
		sealedPAN: bytes.Repeat([]byte{0xab}, 16+sealOverheadBytes),
	}
}

// FuzzParseRecord: whatever parses must encode back to the same bytes, so
// the reader accepts exactly what the writer can produce.
func FuzzParseRecord(f *testing.F) {
	r := sampleRecord()
	f.Add(r.encode())
	r.createdAt, r.domain, r.status = time.Time{}, Domain{}, StatusActive
	f.Add(r.encode())
	f.Add([]byte{1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		view, err := parseRecord(b)
		if err != nil {
			return
		}
		owned := view.owned()
		if again := owned.encode(); !bytes.Equal(again, b) {
			t.Fatalf("round trip:\n in %x\nout %x", b, again)
		}
	})
}

func TestRecordRoundTrip(t *testing.T) {
	r := sampleRecord()
	view, err := parseRecord(r.encode())
	if err != nil {
		t.Fatal(err)
	}
	got := view.owned()
	if got.status != r.status || got.domain != r.domain || !got.createdAt.Equal(r.createdAt) ||
		got.deviceID != r.deviceID || got.wallet != r.wallet || got.requestorID != r.requestorID ||
		got.cardExpiry != r.cardExpiry || got.tokenExpiry != r.tokenExpiry || !bytes.Equal(got.sealedPAN, r.sealedPAN) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
	}
}
