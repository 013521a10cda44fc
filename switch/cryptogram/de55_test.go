package cryptogram

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func vectorEMV() EMV {
	return EMV{ARQC: [8]byte{0x24, 0x77, 0xbc, 0xeb, 0x7d, 0xd1, 0x90, 0x43}, ATC: 0x002a,
		Unpredictable: [4]byte{0x91, 0x5c, 0x0e, 0x47}, CVM: CVMDeviceVerified, Date: "261125"}
}

func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

const (
	tlvARQC = "9f2608 2477bceb7dd19043 "
	tlvATC  = "9f3602 002a "
	tlvUN   = "9f3704 915c0e47 "
	tlvCVM  = "9f3403 010002 "
	tlvDate = "9a03 261125 "
)

func TestParseDE55(t *testing.T) {
	want := vectorEMV()
	ok := []struct{ name, hex string }{
		{"canonical order", tlvARQC + tlvATC + tlvUN + tlvCVM + tlvDate},
		{"any order", tlvDate + tlvCVM + tlvUN + tlvATC + tlvARQC},
		{"unknown tags skipped", "9f2701 80 " + tlvARQC + "9f1007 06010a03a00000 " + tlvATC + tlvUN + "5f2a02 0156 " + tlvCVM + tlvDate + "9500 "},
		{"unknown 3-byte tag", "df8101 00 " + tlvARQC + tlvATC + tlvUN + tlvCVM + tlvDate},
		{"long-form length of an unknown tag", "9f1081 80 " + strings.Repeat("00", 128) + tlvARQC + tlvATC + tlvUN + tlvCVM + tlvDate},
		{"constructed unknown tag skipped whole", "7008 9f3602 ffff 9a01 00 " + tlvARQC + tlvATC + tlvUN + tlvCVM + tlvDate},
	}
	for _, c := range ok {
		got, err := ParseDE55(h(c.hex))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != want {
			t.Errorf("%s: parsed %+v, want %+v", c.name, got, want)
		}
	}
	bad := []struct{ name, hex string }{
		{"empty", ""},
		{"ARQC missing", tlvATC + tlvUN + tlvCVM + tlvDate},
		{"ATC missing", tlvARQC + tlvUN + tlvCVM + tlvDate},
		{"unpredictable number missing", tlvARQC + tlvATC + tlvCVM + tlvDate},
		{"CVM results missing", tlvARQC + tlvATC + tlvUN + tlvDate},
		{"date missing", tlvARQC + tlvATC + tlvUN + tlvCVM},
		{"ATC twice", tlvARQC + tlvATC + tlvATC + tlvUN + tlvCVM + tlvDate},
		{"ARQC of 7 bytes", "9f2607 2477bceb7dd190 " + tlvATC + tlvUN + tlvCVM + tlvDate},
		{"ATC of 3 bytes", tlvARQC + "9f3603 00002a " + tlvUN + tlvCVM + tlvDate},
		{"date not BCD", tlvARQC + tlvATC + tlvUN + tlvCVM + "9a03 26112f"},
		{"date not a date", tlvARQC + tlvATC + tlvUN + tlvCVM + "9a03 261131"},
		{"value cut short", tlvARQC + tlvATC + tlvUN + tlvCVM + "9a03 2611"},
		{"tag without length", tlvARQC + tlvATC + tlvUN + tlvCVM + tlvDate + "95"},
		{"two-byte tag cut short", tlvARQC + tlvATC + tlvUN + tlvCVM + tlvDate + "9f"},
		{"length missing", tlvARQC + tlvATC + tlvUN + tlvCVM + tlvDate + "9f10"},
		{"padding between objects", tlvARQC + "00 " + tlvATC + tlvUN + tlvCVM + tlvDate},
		{"FF padding", tlvARQC + tlvATC + tlvUN + tlvCVM + tlvDate + "ff"},
		{"long-form length for a short value", "9f2681 08 2477bceb7dd19043 " + tlvATC + tlvUN + tlvCVM + tlvDate},
		{"length form 82", tlvARQC + tlvATC + tlvUN + tlvCVM + tlvDate + "9f1082 0001 00"},
		{"length form 80", tlvARQC + tlvATC + tlvUN + tlvCVM + tlvDate + "9f1080"},
		{"tag of 4 bytes", tlvARQC + tlvATC + tlvUN + tlvCVM + tlvDate + "df818101 00"},
		{"tag not in shortest form", tlvARQC + tlvATC + tlvUN + tlvCVM + tlvDate + "9f8010 00"},
		{"more than 255 bytes", tlvARQC + tlvATC + tlvUN + tlvCVM + tlvDate + "9f1081 ff" + strings.Repeat("00", 255)},
	}
	for _, c := range bad {
		if _, err := ParseDE55(h(c.hex)); !errors.Is(err, ErrDE55) {
			t.Errorf("%s: err %v, want ErrDE55", c.name, err)
		}
	}
}

func TestAppendDE55(t *testing.T) {
	got, err := vectorEMV().AppendDE55(nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := h(tlvARQC + tlvATC + tlvUN + tlvCVM + tlvDate); !bytes.Equal(got, want) {
		t.Fatalf("AppendDE55 = %x, want %x", got, want)
	}
	e := vectorEMV()
	e.Date = "2611"
	if _, err := e.AppendDE55(nil); err == nil {
		t.Fatal("a 4-digit date encoded")
	}
}

func TestDeviceVerified(t *testing.T) {
	cases := []struct {
		cvm  [3]byte
		want bool
	}{
		{CVMDeviceVerified, true},
		{[3]byte{0x41, 0x03, 0x02}, true}, // EMV's "apply next rule" flag set
		{CVMNone, false},
		{[3]byte{0x01, 0x00, 0x01}, false}, // verification failed
		{[3]byte{0x01, 0x00, 0x00}, false}, // result unknown
		{[3]byte{0x02, 0x00, 0x02}, false}, // another method
		{[3]byte{0x3F, 0x00, 0x02}, false},
	}
	for _, c := range cases {
		if got := (EMV{CVM: c.cvm}).DeviceVerified(); got != c.want {
			t.Errorf("CVM %x: DeviceVerified %v, want %v", c.cvm, got, c.want)
		}
	}
}

// FuzzParseDE55 checks the parser against its encoder: whatever it accepts
// encodes, and that encoding parses back to the same chip data and is its
// own canonical form. Seeded from testdata/de55/*.hex.
func FuzzParseDE55(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/de55/*.hex")
	for _, path := range seeds {
		text, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		var clean strings.Builder
		for line := range strings.Lines(string(text)) {
			line, _, _ = strings.Cut(line, "#")
			clean.WriteString(strings.Join(strings.Fields(line), ""))
		}
		b, err := hex.DecodeString(clean.String())
		if err != nil {
			f.Fatalf("%s: %v", path, err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseDE55(b)
		if err != nil {
			if !errors.Is(err, ErrDE55) {
				t.Fatalf("error %v does not wrap ErrDE55", err)
			}
			return
		}
		enc, err := e.AppendDE55(nil)
		if err != nil {
			t.Fatalf("parsed %+v does not encode: %v", e, err)
		}
		back, err := ParseDE55(enc)
		if err != nil || back != e {
			t.Fatalf("%x parsed to %+v, encoded to %x, parsed back to %+v (%v)", b, e, enc, back, err)
		}
		again, _ := back.AppendDE55(nil)
		if !bytes.Equal(again, enc) {
			t.Fatalf("encoding not canonical: %x then %x", enc, again)
		}
	})
}
