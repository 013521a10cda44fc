package iso8583

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

var (
	testPurseMAC1 = [PurseMACBytes]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	testPurseMAC2 = [PurseMACBytes]byte{0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10}
	testPurseKey  = PurseKey{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
)

func TestPurseLoadValuesEncode(t *testing.T) {
	r := PurseLoadRequest{Balance: 12_34, Counter: 7, Sequence: 3, MAC: testPurseMAC1}
	got, err := r.Encode()
	if want := "000000001234" + "00007" + "0000000003" + "0123456789abcdef"; err != nil || got != want {
		t.Fatalf("request Encode() = %q, %v; want %q", got, err, want)
	}
	g := PurseLoadGrant{BalanceAfter: 112_34, MAC: testPurseMAC2}
	got, err = g.Encode()
	if want := "000000011234" + "fedcba9876543210"; err != nil || got != want {
		t.Fatalf("grant Encode() = %q, %v; want %q", got, err, want)
	}
	if got, want := string(testPurseKey.Append(nil)), "00112233445566778899aabbccddeeff"; got != want {
		t.Fatalf("key = %q, want %q", got, want)
	}
	d := PurseLoadData{Request: &r, Grant: &g, Key: &testPurseKey}
	got, err = d.Encode()
	want := "40043000000001234000070000000003" + "0123456789abcdef" + "41028000000011234fedcba9876543210" + "4203200112233445566778899aabbccddeeff"
	if err != nil || got != want {
		t.Fatalf("DE48 Encode() = %q, %v; want %q", got, err, want)
	}
	back, err := ParsePurseLoadData(got)
	if err != nil || *back.Request != r || *back.Grant != g || *back.Key != testPurseKey {
		t.Fatalf("ParsePurseLoadData(%q) = %+v, %v", got, back, err)
	}
}

func TestPurseLoadValuesBounds(t *testing.T) {
	max := PurseLoadRequest{Balance: PurseBalanceMax, Counter: 0xFFFF, Sequence: 0xFFFF_FFFF, MAC: testPurseMAC1}
	enc, err := max.Encode()
	if err != nil || enc[:27] != "999999999999"+"65535"+"4294967295" {
		t.Fatalf("largest request: %q, %v", enc, err)
	}
	if back, err := ParsePurseLoadRequest(enc); err != nil || back != max {
		t.Fatalf("largest request back: %+v, %v", back, err)
	}
	for _, bad := range []int64{-1, PurseBalanceMax + 1} {
		if _, err := (PurseLoadRequest{Balance: bad}).Encode(); err != ErrPurseRequest {
			t.Errorf("request balance %d: %v", bad, err)
		}
		if _, err := (PurseLoadGrant{BalanceAfter: bad}).Encode(); err != ErrPurseGrant {
			t.Errorf("grant balance %d: %v", bad, err)
		}
		if _, err := (PurseLoadData{Grant: &PurseLoadGrant{BalanceAfter: bad}}).Encode(); err != ErrPurseGrant {
			t.Errorf("DE48 grant balance %d: %v", bad, err)
		}
	}
}

func TestParsePurseLoadRejects(t *testing.T) {
	req := "000000001234" + "00007" + "0000000003" + "0123456789abcdef"
	grant := "000000011234" + "fedcba9876543210"
	key := "00112233445566778899aabbccddeeff"
	sub := func(tag, v string) string { return tag + fmt.Sprintf("%03d", len(v)) + v }
	tests := []struct {
		name, de48 string
		want       error
	}{
		{"request short", sub("40", req[:42]), ErrPurseRequest},
		{"request long", sub("40", req+"0"), ErrPurseRequest},
		{"request balance not digits", sub("40", "00000000123x"+req[12:]), ErrPurseRequest},
		{"request balance signed", sub("40", "-00000001234"+req[12:]), ErrPurseRequest},
		{"request counter over 65535", sub("40", req[:12]+"65536"+req[17:]), ErrPurseRequest},
		{"request sequence over 2^32-1", sub("40", req[:17]+"4294967296"+req[27:]), ErrPurseRequest},
		{"request MAC upper case", sub("40", req[:27]+"0123456789ABCDEF"), ErrPurseRequest},
		{"request MAC not hex", sub("40", req[:27]+"0123456789abcdeg"), ErrPurseRequest},
		{"grant short", sub("41", grant[:27]), ErrPurseGrant},
		{"grant MAC upper case", sub("41", grant[:12]+"FEDCBA9876543210"), ErrPurseGrant},
		{"grant balance spaces", sub("41", "        1234"+grant[12:]), ErrPurseGrant},
		{"key short", sub("42", key[:30]), ErrPurseKey},
		{"key upper case", sub("42", strings.ToUpper(key)), ErrPurseKey},
		{"tag 40 twice", sub("40", req) + sub("40", req), errPurseOrder},
		{"tags out of order", sub("41", grant) + sub("40", req), errPurseOrder},
		{"key before grant", sub("42", key) + sub("41", grant), errPurseOrder},
	}
	for _, tt := range tests {
		d, err := ParsePurseLoadData(tt.de48)
		if err != tt.want {
			t.Errorf("%s: ParsePurseLoadData(%q) = %+v, %v; want %v", tt.name, tt.de48, d, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), key) {
			t.Errorf("%s: the error shows the key", tt.name)
		}
	}
	// Unknown tags are skipped, and a broken subelement frame is an error.
	d, err := ParsePurseLoadData(sub("01", "6288880012345679") + sub("40", req) + sub("99", "x"))
	if err != nil || d.Request == nil || d.Grant != nil || d.Key != nil {
		t.Fatalf("with unknown tags: %+v, %v", d, err)
	}
	if _, err := ParsePurseLoadData("40043" + req[:10]); err == nil {
		t.Fatal("a subelement longer than the field was accepted")
	}
	if d, err := ParsePurseLoadData(""); err != nil || d != (PurseLoadData{}) {
		t.Fatalf("empty: %+v, %v", d, err)
	}
}

// A purse key never prints.
func TestPurseKeyMasked(t *testing.T) {
	clear := string(testPurseKey.Append(nil))
	j, err := json.Marshal(struct{ K PurseKey }{testPurseKey})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{
		fmt.Sprint(testPurseKey), fmt.Sprintf("%v %+v %#v %s %x %q", testPurseKey, testPurseKey, testPurseKey, testPurseKey, testPurseKey, testPurseKey),
		fmt.Sprintf("%+v", PurseLoadData{Key: &testPurseKey}), string(j),
	} {
		if strings.Contains(s, clear) || strings.Contains(s, "0x11") || strings.Contains(s, "17") {
			t.Errorf("the key shows in %q", s)
		}
	}
}

// FuzzPurseLoadData: ParsePurseLoadData never panics, and what it accepts
// encodes back to the same bytes, less the unknown subelements it skipped
// (the known ones have one encoding: fixed widths, lower-case hex,
// ascending tags).
func FuzzPurseLoadData(f *testing.F) {
	r := PurseLoadRequest{Balance: 12_34, Counter: 7, Sequence: 3, MAC: testPurseMAC1}
	g := PurseLoadGrant{BalanceAfter: 112_34, MAC: testPurseMAC2}
	for _, d := range []PurseLoadData{{Request: &r}, {Grant: &g}, {Grant: &g, Key: &testPurseKey}, {Request: &r, Grant: &g, Key: &testPurseKey}} {
		s, err := d.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s)
	}
	f.Add("01003abc40043" + strings.Repeat("9", 27) + "ffffffffffffffff99000")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > fuzzDE48BytesMax {
			return
		}
		d, err := ParsePurseLoadData(s)
		if err != nil {
			return
		}
		got, err := d.Encode()
		if err != nil {
			t.Fatalf("ParsePurseLoadData(%q) accepted %+v, which does not encode: %v", s, d, err)
		}
		if want := knownSubelements(t, s); got != want {
			t.Fatalf("round trip of %q: %q, want %q", s, got, want)
		}
	})
}

// knownSubelements is s with every subelement but 40, 41 and 42 dropped,
// read with a walker of its own rather than the parser's.
func knownSubelements(t *testing.T, s string) string {
	var out strings.Builder
	for len(s) > 0 {
		n, err := strconv.Atoi(s[2:5])
		if err != nil {
			t.Fatalf("an accepted DE48 has a bad length at %q", s)
		}
		if tag := s[:2]; tag == "40" || tag == "41" || tag == "42" {
			out.WriteString(s[:5+n])
		}
		s = s[5+n:]
	}
	return out.String()
}
