package cryptogram

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// docVector reads the test vector of docs/cryptogram.md: the "name: value"
// lines of the first text block after the "## Test vector" heading.
func docVector(t *testing.T) map[string]string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/cryptogram.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := bytes.Cut(doc, []byte("\n## Test vector"))
	if !ok {
		t.Fatal(`docs/cryptogram.md has no "## Test vector" section`)
	}
	_, block, ok := bytes.Cut(after, []byte("```text\n"))
	if !ok {
		t.Fatal("the test vector section has no ```text block")
	}
	block, _, _ = bytes.Cut(block, []byte("```"))
	v := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(block))
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		value, _, _ = strings.Cut(value, "#") // comments
		v[strings.TrimSpace(name)] = strings.ReplaceAll(strings.TrimSpace(value), " ", "")
	}
	return v
}

func unhex(t *testing.T, v map[string]string, name string, n int) []byte {
	t.Helper()
	b, err := hex.DecodeString(v[name])
	if err != nil || (n > 0 && len(b) != n) {
		t.Fatalf("vector %q = %q: want %d bytes of hex", name, v[name], n)
	}
	return b
}

// TestDocVector recomputes the test vector written in docs/cryptogram.md:
// the session key, the MAC input, the ARQC and the DE55, from its inputs.
func TestDocVector(t *testing.T) {
	v := docVector(t)
	key := unhex(t, v, "token key", KeyBytes)
	counter, err := strconv.ParseUint(v["counter"], 10, 32)
	if err != nil {
		t.Fatalf("vector counter %q: %v", v["counter"], err)
	}
	amount, err := strconv.ParseInt(v["amount"], 10, 64)
	if err != nil {
		t.Fatalf("vector amount %q: %v", v["amount"], err)
	}
	terminal, err := hex.DecodeString(v["terminal"])
	if err != nil {
		t.Fatalf("vector terminal %q: want hex", v["terminal"])
	}
	tap := Tap{Amount: amount, Currency: v["currency"], Date: v["date"], Type: v["transaction type"],
		Terminal: string(terminal), Counter: uint32(counter)}
	copy(tap.Unpredictable[:], unhex(t, v, "unpredictable number", 4))
	copy(tap.CVM[:], unhex(t, v, "CVM results", 3))

	if got := hex.EncodeToString(SessionKey(key, tap.Counter)); got != v["session key"] {
		t.Errorf("session key %s, the doc says %s", got, v["session key"])
	}
	in, err := tap.appendMACInput(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(in); got != v["MAC input"] {
		t.Errorf("MAC input %s, the doc says %s", got, v["MAC input"])
	}
	arqc, err := ARQC(key, tap)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(arqc[:]); got != v["ARQC"] {
		t.Errorf("ARQC %s, the doc says %s", got, v["ARQC"])
	}
	de55, err := EMV{ARQC: arqc, ATC: tap.ATC(), Unpredictable: tap.Unpredictable, CVM: tap.CVM, Date: tap.Date}.AppendDE55(nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(de55); got != v["DE55"] {
		t.Errorf("DE55 %s, the doc says %s", got, v["DE55"])
	}
	if !Verify(key, tap, arqc) {
		t.Error("Verify refuses the vector's own ARQC")
	}
}

func vectorTap() Tap {
	return Tap{Amount: 2599, Currency: "156", Date: "261125", Type: "00", Terminal: "TSIM0001",
		Unpredictable: [4]byte{0x91, 0x5c, 0x0e, 0x47}, Counter: 65578, CVM: CVMDeviceVerified}
}

var vectorKey, _ = hex.DecodeString("00112233445566778899aabbccddeeff")

// TestEveryInputIsCovered changes each input in turn: every change must
// change the ARQC, so none can be altered on the way without a 59.
func TestEveryInputIsCovered(t *testing.T) {
	base, err := ARQC(vectorKey, vectorTap())
	if err != nil {
		t.Fatal(err)
	}
	otherKey := bytes.Clone(vectorKey)
	otherKey[15] ^= 1
	cases := map[string]func(*Tap){
		"amount":              func(tp *Tap) { tp.Amount++ },
		"currency":            func(tp *Tap) { tp.Currency = "840" },
		"date":                func(tp *Tap) { tp.Date = "261126" },
		"type":                func(tp *Tap) { tp.Type = "20" },
		"terminal":            func(tp *Tap) { tp.Terminal = "TSIM0002" },
		"terminal, shorter":   func(tp *Tap) { tp.Terminal = "TSIM000" },
		"unpredictable":       func(tp *Tap) { tp.Unpredictable[3]++ },
		"ATC":                 func(tp *Tap) { tp.Counter++ },
		"counter's high half": func(tp *Tap) { tp.Counter += 1 << 16 },
		"CVM":                 func(tp *Tap) { tp.CVM = CVMNone },
	}
	for name, mutate := range cases {
		tp := vectorTap()
		mutate(&tp)
		got, err := ARQC(vectorKey, tp)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got == base {
			t.Errorf("changing the %s leaves the ARQC as it was", name)
		}
		if Verify(vectorKey, tp, base) {
			t.Errorf("the old ARQC verifies with another %s", name)
		}
	}
	if Verify(otherKey, vectorTap(), base) {
		t.Error("the ARQC verifies under another token's key")
	}
}

func TestMalformedInputsRefused(t *testing.T) {
	cases := map[string]func(*Tap){
		"negative amount":       func(tp *Tap) { tp.Amount = -1 },
		"13-digit amount":       func(tp *Tap) { tp.Amount = 1_000_000_000_000 },
		"currency of 2 digits":  func(tp *Tap) { tp.Currency = "15" },
		"currency not digits":   func(tp *Tap) { tp.Currency = "CNY" },
		"date not a date":       func(tp *Tap) { tp.Date = "261132" },
		"29 February 2027":      func(tp *Tap) { tp.Date = "270229" },
		"month 13":              func(tp *Tap) { tp.Date = "261301" },
		"type of 1 digit":       func(tp *Tap) { tp.Type = "0" },
		"type not digits":       func(tp *Tap) { tp.Type = "0A" },
		"date with a separator": func(tp *Tap) { tp.Date = "26-11-" },
		"no terminal":           func(tp *Tap) { tp.Terminal = "" },
		"blank terminal":        func(tp *Tap) { tp.Terminal = "        " },
		"9-character terminal":  func(tp *Tap) { tp.Terminal = "TSIM00001" },
		"terminal with a NUL":   func(tp *Tap) { tp.Terminal = "TSIM\x00001" },
		"terminal not ASCII":    func(tp *Tap) { tp.Terminal = "TSIM\u00e9" },
	}
	for name, mutate := range cases {
		tp := vectorTap()
		mutate(&tp)
		if _, err := ARQC(vectorKey, tp); err == nil {
			t.Errorf("%s: ARQC computed", name)
		}
		if Verify(vectorKey, tp, [8]byte{}) {
			t.Errorf("%s: verified", name)
		}
	}
	if _, err := ARQC(vectorKey[:15], vectorTap()); err == nil {
		t.Error("a 15-byte key accepted")
	}
	tp := vectorTap()
	tp.Date = "280229"
	if _, err := ARQC(vectorKey, tp); err != nil {
		t.Errorf("29 February 2028: %v", err)
	}
}

// TestShortTerminalIsPadded: the codec strips DE41's trailing spaces, so a
// terminal ID and the same padded with spaces are one terminal, one ARQC.
func TestShortTerminalIsPadded(t *testing.T) {
	short, padded := vectorTap(), vectorTap()
	short.Terminal, padded.Terminal = "T1", "T1      "
	a, err := ARQC(vectorKey, short)
	if err != nil {
		t.Fatal(err)
	}
	if !Verify(vectorKey, padded, a) {
		t.Fatal("a terminal ID padded with spaces gives another ARQC")
	}
	in, _ := short.appendMACInput(nil)
	if len(in) != macInputBytes || in[0] != Layout || string(in[24:32]) != "T1      " {
		t.Fatalf("MAC input %x: want %d bytes, layout %d, terminal at 24..32", in, macInputBytes, Layout)
	}
}

func TestDaysApart(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	// 16:30 UTC on 25 November is 00:30 on the 26th in Shanghai.
	now := time.Date(2026, 11, 25, 16, 30, 0, 0, time.UTC).In(shanghai)
	cases := []struct {
		date string
		want int
	}{
		{"261126", 0}, {"261125", 1}, {"261127", 1}, {"261124", 2}, {"261128", 2},
		{"270226", 92}, {"251126", 365}, {"270101", 36}, {"991231", 26698}, {"000101", 9826},
	}
	for _, c := range cases {
		if got, ok := DaysApart(c.date, now); !ok || got != c.want {
			t.Errorf("DaysApart(%s, %v) = %d, %v; want %d", c.date, now, got, ok, c.want)
		}
	}
	if got, _ := DaysApart("261125", now.UTC()); got != 0 {
		t.Errorf("in UTC the same instant is the 25th: %d days apart, want 0", got)
	}
	if _, ok := DaysApart("261131", now); ok {
		t.Error("31 November accepted as a date")
	}
	if got, ok := DaysApart("261125", time.Time{}); !ok || got <= DateSkewDaysMax {
		t.Errorf("the zero time is %d days from 2026 (%v)", got, ok)
	}
}

// BenchmarkVerify is the switch's check of one tap's cryptogram: the
// session key and the ARQC, both HMAC-SHA256.
func BenchmarkVerify(b *testing.B) {
	key := []byte("0123456789abcdef")
	tap := Tap{Amount: 12_34, Currency: "156", Date: "261203", Type: "00", Terminal: "TSIM0001",
		Unpredictable: [4]byte{1, 2, 3, 4}, Counter: 77, CVM: CVMDeviceVerified}
	arqc, err := ARQC(key, tap)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !Verify(key, tap, arqc) {
			b.Fatal("does not verify")
		}
	}
}

// TestVerifyAllocatesNothing: the check of a tap's cryptogram, on every
// authorization, computes both HMACs in stack buffers.
func TestVerifyAllocatesNothing(t *testing.T) {
	key := []byte("0123456789abcdef")
	tap := Tap{Amount: 999_999_999_999, Currency: "156", Date: "261203", Type: "00", Terminal: "TSIM0001",
		Counter: 1 << 20, CVM: CVMDeviceVerified}
	arqc, err := ARQC(key, tap)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { Verify(key, tap, arqc) }); n != 0 {
		t.Errorf("Verify: %v allocations", n)
	}
}
