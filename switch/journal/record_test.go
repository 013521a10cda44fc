package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// sampleEntry has every field set, with Seq and BusinessDay as Append
// would assign them.
func sampleEntry(tid, stan string) *Entry {
	return &Entry{
		Seq:              42,
		BusinessDay:      "20240315",
		Time:             time.Date(2024, 3, 15, 6, 30, 0, 123456789, time.UTC),
		NodeID:           "node-a",
		MTI:              "0200",
		ProcessingCode:   "000000",
		Amount:           12345,
		Currency:         "156",
		TerminalID:       tid,
		STAN:             stan,
		TransmissionTime: "0315063000",
		RRN:              "407506123456",
		MerchantID:       "104110053990001",
		MCC:              "5411",
		Acquirer:         "48020000",
		Token:            "6288880000000000017",
		PANSealed:        []byte{0x01, 0x00, 0x0c, 0xde, 0xad, 0xbe, 0xef, 0x00, 0xff},
		IssuerID:         "ICBC",
		Product:          "debit",
		IssuerSTAN:       "000042",
		ResponseCode:     "00",
		AuthCode:         "A1B2C3",
		RequestDigest:    sha256.Sum256([]byte(tid + stan)),
		StandIn:          true,
	}
}

// TestRecordGolden pins the version 1 layout: a change to the encoding
// must come with a new version, not a silent rewrite of old records.
func TestRecordGolden(t *testing.T) {
	got := appendRecord(nil, sampleEntry("TERM0001", "000123"))
	path := filepath.Join("testdata", "record_v1.hex")
	if *update {
		if err := os.WriteFile(path, []byte(hex.Dump(got)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if hex.Dump(got) != string(want) {
		t.Fatalf("record layout changed; got\n%s\nwant\n%s", hex.Dump(got), want)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	full := sampleEntry("TERM0001", "000123")
	minimal := &Entry{Seq: 1, BusinessDay: "20240101", Time: time.Unix(0, 1).UTC(), NodeID: "n",
		MTI: "0100", TerminalID: "T", STAN: "000001", TransmissionTime: "0101000000", ResponseCode: "96"}
	load := sampleEntry("TU000010", "000124")
	load.ProcessingCode = iso8583.ProcPurseLoad
	load.PurseLoad = &PurseLoad{Sequence: 70_000, AfterCounter: 65_535}
	for _, e := range []*Entry{full, minimal, load} {
		got, err := decodeRecord(appendRecord(nil, e))
		if err != nil {
			t.Fatal(err)
		}
		if !entriesEqual(got, *e) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, *e)
		}
	}
}

// reseal recomputes the CRC after a test edits a record's body, so the test
// reaches the checks behind the checksum.
func reseal(rec []byte) []byte {
	body := rec[:len(rec)-crcBytes]
	return binary.BigEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
}

func TestDecodeRecordErrors(t *testing.T) {
	good := appendRecord(nil, sampleEntry("TERM0001", "000123"))
	flip := bytes.Clone(good)
	flip[30] ^= 0x01
	version := bytes.Clone(good)
	version[0] = 2
	flags := bytes.Clone(good)
	flags[57] = 0x82
	trailing := append(bytes.Clone(good[:len(good)-crcBytes]), 0, 0, 0, 0, 0, 0) // two extra bytes, then room for the CRC
	truncated := bytes.Clone(good[:len(good)-crcBytes-3])
	badDay := bytes.Clone(good)
	badDay[recordFixedEnd+2] = 'X' // first byte of BusinessDay
	tests := []struct {
		name, want string
		rec        []byte
	}{
		{"empty", "shorter than", nil},
		{"flipped bit", "CRC-32C mismatch", flip},
		{"unknown version", "unknown record version 2", reseal(version)},
		{"unknown flags", "unknown flags", reseal(flags)},
		{"trailing bytes", "after the last field", reseal(trailing)},
		{"truncated field", errTruncated.Error(), reseal(append(truncated, 0, 0, 0, 0))},
		{"bad business day", "BusinessDay", reseal(badDay)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodeRecord(tc.rec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decodeRecord: err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestPointerRoundTrip(t *testing.T) {
	p := appendPointer(nil, "20241231", 1<<40+7)
	day, seq, err := decodePointer(p)
	if err != nil || day != "20241231" || seq != 1<<40+7 {
		t.Fatalf("decodePointer = %s, %d, %v", day, seq, err)
	}
	p[5] ^= 0x10
	if _, _, err := decodePointer(p); err == nil || !strings.Contains(err.Error(), "CRC-32C") {
		t.Fatalf("flipped pointer: err = %v", err)
	}
}

// FuzzDecodeRecord: decoding never panics, and whatever decodes re-encodes
// to the same bytes (the encoding is canonical, so the CRC covers meaning).
func FuzzDecodeRecord(f *testing.F) {
	f.Add(appendRecord(nil, sampleEntry("TERM0001", "000123")))
	f.Add(appendRecord(nil, &Entry{BusinessDay: "20240101", Time: time.Unix(0, 1).UTC(), NodeID: "n",
		MTI: "0100", TerminalID: "T", STAN: "000001", TransmissionTime: "0101000000", ResponseCode: "96"}))
	f.Fuzz(func(t *testing.T, rec []byte) {
		e, err := decodeRecord(rec)
		if err != nil {
			return
		}
		if again := appendRecord(nil, &e); !bytes.Equal(again, rec) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, rec)
		}
	})
}

// entriesEqual compares entries field by field; Time by instant and
// PANSealed treating nil and empty alike.
func entriesEqual(a, b Entry) bool {
	if !a.Time.Equal(b.Time) || !bytes.Equal(a.PANSealed, b.PANSealed) {
		return false
	}
	a.Time, b.Time = time.Time{}, time.Time{}
	a.PANSealed, b.PANSealed = nil, nil
	return reflect.DeepEqual(a, b)
}

// FuzzDecodeRecordBody seals whatever body the fuzzer makes with a valid
// CRC, so that it explores the field parsing behind the checksum.
func FuzzDecodeRecordBody(f *testing.F) {
	rec := appendRecord(nil, sampleEntry("TERM0001", "000123"))
	f.Add(rec[:len(rec)-crcBytes])
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := binary.BigEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, castagnoli))
		e, err := decodeRecord(rec)
		if err != nil {
			return
		}
		if again := appendRecord(nil, &e); !bytes.Equal(again, rec) {
			t.Fatalf("re-encoding differs:\n got %x\nwant %x", again, rec)
		}
	})
}

// A purse load is only ever journaled on a load's processing code, and a
// record whose flag promises one must hold its 6 bytes.
func TestPurseLoadRules(t *testing.T) {
	e := sampleEntry("TU000010", "000125")
	e.PurseLoad = &PurseLoad{Sequence: 1}
	if err := e.validate(); err == nil || !strings.Contains(err.Error(), "PurseLoad on processing code") {
		t.Fatalf("purse load on a purchase: %v", err)
	}
	e.ProcessingCode = iso8583.ProcPurseOpen
	rec := appendRecord(nil, e)
	body := rec[:len(rec)-crcBytes-1] // the last byte of the load cut off
	if _, err := decodeRecord(reseal(body)); err == nil {
		t.Fatal("a record with a cut purse load decoded")
	}
}
