package iso8583

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// FuzzFastAgreesWithMoov holds the fast codec (Fields, Builder) to the
// reference one (Unpack, Pack on moov) on every payload: both accept it or
// both refuse it, refusing with the same FormatError MTI and Field; an
// accepted payload gives the same MTI and the same value in every field;
// and a Builder given those fields packs exactly the bytes Pack packs.
// Seeds: the example frames of testdata/frames, with and without an
// all-zero secondary bitmap, and every frame of FuzzFrame's corpus in
// testdata/fuzz (each stream cut into its frames, and whole).
func FuzzFastAgreesWithMoov(f *testing.F) {
	for _, seed := range fastSeeds(f) {
		f.Add(seed)
	}
	var fields Fields
	var b Builder
	var out []byte
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) > FrameBytesMaxDefault {
			return
		}
		out = checkAgreement(t, payload, &fields, &b, out[:0])
	})
}

// checkAgreement is the oracle of FuzzFastAgreesWithMoov for one payload.
func checkAgreement(t *testing.T, payload []byte, fields *Fields, b *Builder, out []byte) []byte {
	t.Helper()
	msg, moovErr := Unpack(payload)
	fastErr := fields.Parse(payload)
	if (moovErr == nil) != (fastErr == nil) {
		t.Fatalf("payload %q: Unpack says %v, Fields.Parse says %v", payload, moovErr, fastErr)
	}
	if moovErr != nil {
		var want, got *FormatError
		if !errors.As(moovErr, &want) || !errors.As(fastErr, &got) {
			t.Fatalf("payload %q: errors %T, %T; want *FormatError", payload, moovErr, fastErr)
		}
		if got.MTI != want.MTI || got.Field != want.Field {
			t.Fatalf("payload %q: Fields.Parse refuses (MTI %q, DE%d: %v), Unpack (MTI %q, DE%d: %v)",
				payload, got.MTI, got.Field, got.Err, want.MTI, want.Field, want.Err)
		}
		if fields.Has(FieldSTAN) || fields.Payload() != nil {
			t.Fatalf("payload %q refused, yet Fields holds it", payload)
		}
		return out
	}
	want := fieldBytes(t, msg)
	got := map[int]string{FieldMTI: fields.MTI()}
	for id, v := range fields.All() {
		got[id] = string(v)
		if !fields.Has(id) || !bytes.Equal(fields.Bytes(id), v) {
			t.Fatalf("payload %q: DE%d yielded by All but Has/Bytes disagree", payload, id)
		}
		if fieldTable[id].kind == kindNumeric && len(v) > 0 && len(v) <= 19 {
			n, ok := fields.Uint(id)
			if want, err := strconv.ParseUint(string(v), 10, 64); !ok || err != nil || n != want {
				t.Fatalf("payload %q: Uint(%d) = %d, %v; value %q", payload, id, n, ok, v)
			}
		}
		start, end, ok := fields.Span(id)
		if !ok || string(payload[start:end]) != string(v) {
			t.Fatalf("payload %q: Span of DE%d is %d:%d, value %q", payload, id, start, end, v)
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("payload %q:\nFields %v\nUnpack %v", payload, got, want)
	}
	packed, err := Pack(msg)
	if err != nil {
		t.Fatalf("payload %q accepted, Pack: %v", payload, err)
	}
	b.Reset(fields.MTI())
	for id, v := range fields.All() {
		b.SetBytes(id, v)
	}
	out, err = b.Append(out)
	if err != nil {
		t.Fatalf("payload %q accepted, Builder: %v", payload, err)
	}
	if !bytes.Equal(out, packed) {
		t.Fatalf("payload %q:\nBuilder packs %q\n   Pack packs %q", payload, out, packed)
	}
	return out
}

// fastSeeds are the payloads FuzzFastAgreesWithMoov starts from.
func fastSeeds(t testing.TB) [][]byte {
	t.Helper()
	var seeds [][]byte
	frames := testdataFrames(t)
	for _, name := range slices.Sorted(maps.Keys(frames)) {
		payload := frames[name][frameHeaderBytes:]
		wide, err := WithZeroSecondaryBitmap(payload)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, payload, wide)
	}
	paths, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzFrame", "*"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no FuzzFrame corpus: %v", err)
	}
	for _, p := range paths {
		stream := readCorpusBytes(t, p)
		seeds = append(seeds, stream)
		fr := NewFrameReader(bytes.NewReader(stream), FrameBytesMaxDefault)
		for {
			frame, err := fr.Next()
			if errors.Is(err, ErrEmptyFrame) {
				continue
			}
			if err != nil {
				break
			}
			seeds = append(seeds, slices.Clone(frame))
		}
	}
	return seeds
}

// readCorpusBytes reads a corpus file of one []byte argument, in the
// "go test fuzz v1" format.
func readCorpusBytes(t testing.TB, path string) []byte {
	t.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")
	if len(lines) != 2 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a one-argument corpus file", path)
	}
	quoted, ok := strings.CutPrefix(lines[1], "[]byte(")
	quoted, ok2 := strings.CutSuffix(quoted, ")")
	if !ok || !ok2 {
		t.Fatalf("%s: argument is not a []byte", path)
	}
	s, err := strconv.Unquote(quoted)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(s)
}

// The whole seed corpus agrees, in a plain go test run too.
func TestFastAgreesOnCorpus(t *testing.T) {
	var fields Fields
	var b Builder
	for _, seed := range fastSeeds(t) {
		checkAgreement(t, seed, &fields, &b, nil)
	}
}

// Hand-made payloads for each rule Unpack enforces, each refused by both
// codecs for the same field (checkAgreement compares them).
func TestFastRefusesAsMoov(t *testing.T) {
	echo := func(bitmap string, rest string) []byte { return []byte("0800" + bitmap + rest) }
	de70 := bitmapFor(7, 11, 70)
	good := "1125120000" + "000042" + "301"
	tests := map[string][]byte{
		"empty":                                 nil,
		"short MTI":                             []byte("08"),
		"MTI not ASCII":                         []byte("08\x80\x00"),
		"no bitmap":                             []byte("0800\x00\x00"),
		"letters in MTI":                        append([]byte("08A0"), echo(de70, good)[4:]...),
		"secondary bitmap cut":                  []byte("0800\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
		"field not in spec":                     echo(bitmapFor(5), "000000000001"),
		"numeric field with letters":            echo(de70, "11251200AA"+"000042"+"301"),
		"truncated field":                       echo(de70, good[:15]),
		"trailing bytes":                        echo(de70, good+"x"),
		"non-ASCII text":                        echo(bitmapFor(41), "TERM\xff   "),
		"control byte in text":                  echo(bitmapFor(41), "TERM\x01   "),
		"LL prefix with a sign":                 echo(bitmapFor(2), "+5"+"12345"),
		"LL prefix over maximum":                echo(bitmapFor(2), "20"+strings.Repeat("1", 20)),
		"LLL prefix cut":                        echo(bitmapFor(48), "01"),
		"tertiary bitmap":                       []byte("0800\x80\x00\x00\x00\x00\x00\x00\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
		"field of a third bitmap":               []byte("0800\x80\x00\x00\x00\x00\x00\x00\x00\x80\x00\x00\x00\x00\x00\x00\x00\x40\x00\x00\x00\x00\x00\x00\x00"),
		"content fault before a decoding fault": echo(bitmapFor(7, 11), "11251200AA"+"0000"),
		"all-zero secondary, then accepted":     []byte("0800\x82\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" + "1125120000"),
	}
	var fields Fields
	var b Builder
	for name, payload := range tests {
		t.Run(name, func(t *testing.T) {
			checkAgreement(t, payload, &fields, &b, nil)
			if err := fields.Parse(payload); (err == nil) != strings.HasSuffix(name, "accepted") {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

// Every case of TestPackUnpack reads back through Fields as through Unpack,
// and the Builder packs it as Pack does.
func TestFastPackUnpackCases(t *testing.T) {
	var fields Fields
	var b Builder
	for _, payload := range [][]byte{benchRequest(), benchAnswer(t)} {
		checkAgreement(t, payload, &fields, &b, nil)
	}
}

func benchAnswer(t testing.TB) []byte {
	m := NewMessage()
	m.MTI(MTIFinancialResponse)
	for id, v := range benchAnswerFields {
		m.Field(id, v)
	}
	b, err := Pack(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var benchAnswerFields = map[int]string{
	FieldPAN: "6299906048458884", FieldProcessingCode: "000000", FieldAmount: "000000001234",
	FieldTransmissionTime: "1125120000", FieldSTAN: "000042", FieldRRN: "632917000042",
	FieldAuthCode: "123456", FieldResponseCode: "00", FieldTerminalID: "TSIM0001",
	FieldMerchantID: "104110054110001", FieldCurrency: "156",
}

func TestBuilder(t *testing.T) {
	var b Builder
	b.Reset(MTIFinancialResponse)
	b.Set(FieldSTAN, "42")
	b.SetUint(FieldAmount, 1234)
	b.Set(FieldTerminalID, "TERM01")
	b.Set(FieldReceivingInstitution, "0102")
	got, err := b.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "0210" + bitmapFor(4, 11, 41, 100) + "000000001234" + "000042" + "TERM01  " + "04" + "0102"
	if string(got) != want {
		t.Fatalf("Append\n got %q\nwant %q", got, want)
	}
	b.Unset(FieldReceivingInstitution)
	got, _ = b.Append(got[:0])
	if want := "0210" + bitmapFor(4, 11, 41) + "000000001234" + "000042" + "TERM01  "; string(got) != want {
		t.Fatalf("after Unset\n got %q\nwant %q", got, want)
	}

	for name, set := range map[string]func(){
		"letter in numeric":    func() { b.Set(FieldSTAN, "00004A") },
		"too long":             func() { b.Set(FieldSTAN, "1234567") },
		"control byte in text": func() { b.Set(FieldTerminalID, "T\x00") },
		"binary of wrong size": func() { b.SetBytes(FieldMAC, []byte{1, 2}) },
		"undefined field":      func() { b.Set(5, "1") },
		"bitmap bit":           func() { b.Set(65, "1") },
		"uint too large":       func() { b.SetUint(FieldSTAN, 1234567) },
		"uint in text field":   func() { b.SetUint(FieldTerminalID, 1) },
	} {
		b.Reset(MTIFinancialResponse)
		b.Set(FieldResponseCode, "00")
		set()
		b.Set(FieldRRN, "1")
		if _, err := b.Append(nil); err == nil {
			t.Errorf("%s: Append packed it", name)
		} else if fe := (*FormatError)(nil); !errors.As(err, &fe) {
			t.Errorf("%s: error %T", name, err)
		}
	}
	b.Reset("02A0")
	if _, err := b.Append(nil); err == nil {
		t.Error("MTI with a letter packed")
	}
}

// A signed Builder message is the same bytes as PackSigned's.
func TestBuilderSigned(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	for _, extra := range []bool{false, true} {
		m := NewMessage()
		m.MTI(MTIFinancialResponse)
		var b Builder
		b.Reset(MTIFinancialResponse)
		for id, v := range benchAnswerFields {
			m.Field(id, v)
			b.Set(id, v)
		}
		if extra {
			m.Field(FieldReceivingInstitution, "0102")
			b.Set(FieldReceivingInstitution, "0102")
		}
		want, err := PackSigned(m, key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.AppendFrame([]byte("x"), key)
		if err != nil {
			t.Fatal(err)
		}
		if wantFrame, _ := AppendFrame([]byte("x"), want); !bytes.Equal(got, wantFrame) {
			t.Fatalf("secondary %v:\nBuilder %q\n  moov  %q", extra, got, wantFrame)
		}
	}
}

func TestFastZeroAllocs(t *testing.T) {
	payload := benchRequest()
	var fields Fields
	if n := testing.AllocsPerRun(100, func() {
		if err := fields.Parse(payload); err != nil {
			t.Fatal(err)
		}
		_ = fields.MTI()
	}); n != 0 {
		t.Errorf("Fields.Parse: %v allocations", n)
	}
	var b Builder
	buf := make([]byte, 0, 512)
	if n := testing.AllocsPerRun(100, func() {
		buildAnswer(&b)
		var err error
		if buf, err = b.AppendFrame(buf[:0], nil); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Builder: %v allocations", n)
	}
	key := bytes.Repeat([]byte{7}, 32)
	if n := testing.AllocsPerRun(100, func() {
		buildAnswer(&b)
		var err error
		if buf, err = b.AppendFrame(buf[:0], key); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Builder, signed: %v allocations", n)
	}
}

// buildAnswer is BenchmarkPack's answer, on a Builder.
func buildAnswer(b *Builder) {
	b.Reset(MTIFinancialResponse)
	b.Set(FieldPAN, "6299906048458884")
	b.Set(FieldProcessingCode, "000000")
	b.SetUint(FieldAmount, 1234)
	b.Set(FieldTransmissionTime, "1125120000")
	b.Set(FieldSTAN, "000042")
	b.Set(FieldRRN, "632917000042")
	b.Set(FieldAuthCode, "123456")
	b.Set(FieldResponseCode, "00")
	b.Set(FieldTerminalID, "TSIM0001")
	b.Set(FieldMerchantID, "104110054110001")
	b.Set(FieldCurrency, "156")
}

// TestCopyToIsAParseOfTheCopy: a Fields copied with CopyTo reads every
// value as a fresh Parse of the copy does, and keeps them when the
// original buffer is overwritten.
func TestCopyToIsAParseOfTheCopy(t *testing.T) {
	payload := bytes.Clone(benchRequest())
	var orig, copied, fresh Fields
	if err := orig.Parse(payload); err != nil {
		t.Fatal(err)
	}
	buf := orig.CopyTo(&copied, nil)
	if err := fresh.Parse(bytes.Clone(payload)); err != nil {
		t.Fatal(err)
	}
	for i := range payload {
		payload[i] = 'X'
	}
	if copied.MTI() != fresh.MTI() || !bytes.Equal(buf, copied.Payload()) {
		t.Fatalf("MTI %q, want %q", copied.MTI(), fresh.MTI())
	}
	for id := 2; id <= 128; id++ {
		if copied.Has(id) != fresh.Has(id) || !bytes.Equal(copied.Bytes(id), fresh.Bytes(id)) {
			t.Errorf("DE%d: %q, want %q", id, copied.Bytes(id), fresh.Bytes(id))
		}
	}
}
