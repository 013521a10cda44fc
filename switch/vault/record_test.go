package vault

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"slices"
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
// the reader accepts exactly what the writer can produce. The fuzzer mutates
// the body and the harness appends a good CRC; a random CRC would stop
// nearly every input at the first check.
func FuzzParseRecord(f *testing.F) {
	body := func(r record) []byte { b := r.encode(); return b[:len(b)-recordCRCBytes] }
	r := sampleRecord()
	f.Add(body(r))
	r.createdAt, r.domain, r.status = time.Time{}, Domain{}, StatusActive
	f.Add(body(r))
	f.Add([]byte{1, 1, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		b := binary.BigEndian.AppendUint32(slices.Clip(body), crc32.Checksum(body, crcTable))
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
