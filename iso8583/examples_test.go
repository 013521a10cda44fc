package iso8583

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/iso8583/mac"
)

// The example frames of docs/wire.md, committed as annotated hex under
// testdata/frames. They tell one story: a phone pays 25.99 CNY by NFC with
// its token; the switch detokenizes and asks the issuer with the real PAN;
// the issuer approves; the terminal later reverses; the switch echoes the
// issuer link. Regenerate with: go test ./iso8583 -run TestExampleFrames -update
var update = flag.Bool("update", false, "rewrite testdata/frames from the examples")

const (
	exToken     = "6299900012345672"    // token BIN 629990 (configs/switch.yaml), Luhn-valid
	exPAN       = "6222020200112345679" // ICBC debit card, 19 digits
	exRequestor = "50110030273"         // token requestor (wallet) ID
	exDevice    = "MI-8F3A2C91D0E4B7"   // device the token is bound to
	exRRN       = "533008000123"
	exTerminal  = "TERM0001"
	exMerchant  = "898110054110001"
	exAcquirer  = "03080000"
	exSwitch    = "00010000"
	exIssuer    = "01020000"
)

// exICC is DE55 of the terminal request: BER-TLV, tag, length, value.
var exICC = "\x9f\x26\x08\x3a\x7b\x19\xc2\x5e\x04\xd1\x88" + // ARQC
	"\x9f\x36\x02\x00\x2a" + // ATC 42
	"\x9f\x37\x04\x91\x5c\x0e\x47" + // unpredictable number
	"\x9f\x34\x03\x01\x00\x02" // CVM results: verified on the device

var exMerchantNameLocation = fmt.Sprintf("%-25s%-13s%s", "Jinyuan Supermarket", "Beijing", "CN")

type exField struct {
	id    int
	value string
}

type example struct {
	file   string // under testdata/frames
	title  string
	mti    string
	fields []exField
	signed bool // a terminal request or its answer: MACed under exTerminalKey (docs/wire.md section 11)
}

// exAcquirerKey is the example acquirer's key, bytes 00 to 1f, and
// exTerminalKey the key of its terminal exTerminal derived from it.
var (
	exAcquirerKey = func() []byte {
		k := make([]byte, mac.KeySize)
		for i := range k {
			k[i] = byte(i)
		}
		return k
	}()
	exTerminalKey = mac.TerminalKey(exAcquirerKey, exTerminal)
)

var examples = []example{{
	file:   "01-terminal-0200-purchase.hex",
	title:  "0200 token purchase, terminal -> switch: 25.99 CNY paid by phone (NFC)",
	mti:    MTIFinancialRequest,
	signed: true,
	fields: []exField{
		{FieldPAN, exToken}, {FieldProcessingCode, ProcPurchase}, {FieldAmount, "000000002599"},
		{FieldTransmissionTime, "1125083015"}, {FieldSTAN, "000123"}, {FieldLocalTime, "163015"},
		{FieldLocalDate, "1125"}, {FieldExpiry, "2911"}, {FieldMCC, "5411"}, {FieldPOSEntryMode, "071"},
		{FieldPOSCondition, "00"}, {FieldAcquirer, exAcquirer}, {FieldRRN, exRRN}, {FieldTerminalID, exTerminal},
		{FieldMerchantID, exMerchant}, {FieldMerchantNameLocation, exMerchantNameLocation},
		{FieldCurrency, CurrencyCNY}, {FieldICC, exICC},
	},
}, {
	file:   "02-switch-0210-to-terminal.hex",
	title:  "0210 approval, switch -> terminal: the token in DE2, never the PAN",
	mti:    MTIFinancialResponse,
	signed: true,
	fields: []exField{
		{FieldPAN, exToken}, {FieldProcessingCode, ProcPurchase}, {FieldAmount, "000000002599"},
		{FieldTransmissionTime, "1125083015"}, {FieldSTAN, "000123"}, {FieldRRN, exRRN},
		{FieldAuthCode, "483920"}, {FieldResponseCode, RCApproved}, {FieldTerminalID, exTerminal},
		{FieldMerchantID, exMerchant}, {FieldCurrency, CurrencyCNY},
	},
}, {
	file:  "03-switch-0200-to-issuer.hex",
	title: "0200 purchase, switch -> issuer: real PAN and expiry, token data in DE48, issuer in DE100",
	mti:   MTIFinancialRequest,
	fields: []exField{
		{FieldPAN, exPAN}, {FieldProcessingCode, ProcPurchase}, {FieldAmount, "000000002599"},
		{FieldTransmissionTime, "1125083016"}, {FieldSTAN, "004711"}, {FieldLocalTime, "163015"},
		{FieldLocalDate, "1125"}, {FieldExpiry, "2803"}, {FieldMCC, "5411"}, {FieldPOSEntryMode, "071"},
		{FieldPOSCondition, "00"}, {FieldAcquirer, exAcquirer}, {FieldForwarder, exSwitch},
		{FieldRRN, exRRN}, {FieldTerminalID, exTerminal}, {FieldMerchantID, exMerchant},
		{FieldMerchantNameLocation, exMerchantNameLocation},
		{FieldPrivateTokenData, TokenData{Token: exToken, RequestorID: exRequestor, DeviceID: exDevice}.Encode()},
		{FieldCurrency, CurrencyCNY}, {FieldReceivingInstitution, exIssuer},
	},
}, {
	file:  "04-issuer-0210-to-switch.hex",
	title: "0210 approval, issuer -> switch: DE11 echoed, matched to the switch's request by it",
	mti:   MTIFinancialResponse,
	fields: []exField{
		{FieldPAN, exPAN}, {FieldProcessingCode, ProcPurchase}, {FieldAmount, "000000002599"},
		{FieldTransmissionTime, "1125083016"}, {FieldSTAN, "004711"}, {FieldRRN, exRRN},
		{FieldAuthCode, "483920"}, {FieldResponseCode, RCApproved}, {FieldTerminalID, exTerminal},
		{FieldCurrency, CurrencyCNY},
	},
}, {
	file:   "05-terminal-0400-reversal.hex",
	title:  "0400 reversal, terminal -> switch: DE90 names the original 0200",
	mti:    MTIReversalRequest,
	signed: true,
	fields: []exField{
		{FieldPAN, exToken}, {FieldProcessingCode, ProcPurchase}, {FieldAmount, "000000002599"},
		{FieldTransmissionTime, "1125083115"}, {FieldSTAN, "000124"}, {FieldLocalTime, "163115"},
		{FieldLocalDate, "1125"}, {FieldAcquirer, exAcquirer}, {FieldRRN, exRRN},
		{FieldTerminalID, exTerminal}, {FieldMerchantID, exMerchant}, {FieldCurrency, CurrencyCNY},
		{FieldOriginalData, "0200" + "000123" + "1125083015" + "000" + exAcquirer + "00000000000"},
	},
}, {
	file:  "06-switch-0800-echo.hex",
	title: "0800 echo test, switch -> issuer",
	mti:   MTINetworkMgmtRequest,
	fields: []exField{
		{FieldTransmissionTime, "1125083000"}, {FieldSTAN, "004712"}, {FieldNetworkMgmtCode, NetEcho},
	},
}, {
	file:  "07-issuer-0810-echo.hex",
	title: "0810 echo answer, issuer -> switch",
	mti:   MTINetworkMgmtResponse,
	fields: []exField{
		{FieldTransmissionTime, "1125083000"}, {FieldSTAN, "004712"}, {FieldResponseCode, RCApproved},
		{FieldNetworkMgmtCode, NetEcho},
	},
}}

func (ex example) message(t testing.TB) *moov.Message {
	t.Helper()
	msg := NewMessage()
	msg.MTI(ex.mti)
	for _, f := range ex.fields {
		if err := msg.BinaryField(f.id, []byte(f.value)); err != nil {
			t.Fatalf("%s: DE%d: %v", ex.file, f.id, err)
		}
	}
	if ex.signed {
		payload, err := PackSigned(msg, exTerminalKey)
		if err != nil {
			t.Fatalf("%s: %v", ex.file, err)
		}
		if err := msg.BinaryField(MACField(msg), payload[len(payload)-mac.Size:]); err != nil {
			t.Fatal(err)
		}
	}
	return msg
}

func (ex example) get(id int) string {
	for _, f := range ex.fields {
		if f.id == id {
			return f.value
		}
	}
	return ""
}

// formatOf is the notation of docs/wire.md for a data element: "n 6",
// "ans 40", "b 8", "LLVAR n..19", "LLLVAR b..255".
func formatOf(d fieldDef) string {
	abbr := map[kind]string{kindNumeric: "n", kindText: "ans", kindBinary: "b"}[d.kind]
	switch d.digits {
	case 2:
		return fmt.Sprintf("LLVAR %s..%d", abbr, d.length)
	case 3:
		return fmt.Sprintf("LLLVAR %s..%d", abbr, d.length)
	}
	return fmt.Sprintf("%s %d", abbr, d.length)
}

// annotated writes a frame as hex, one data element to a line group, with
// what each one is after '#'. parseHexFrame reads it back.
func annotated(t testing.TB, ex example, msg *moov.Message, payload []byte) string {
	t.Helper()
	var b strings.Builder
	line := func(hexCol, comment string) {
		if comment == "" {
			fmt.Fprintf(&b, "%s\n", hexCol)
			return
		}
		fmt.Fprintf(&b, "%-58s # %s\n", hexCol, comment)
	}
	fmt.Fprintf(&b, "# %s\n", ex.title)
	line(fmt.Sprintf("%04x", len(payload)), fmt.Sprintf("length: %d bytes follow", len(payload)))
	line(hex.EncodeToString([]byte(ex.mti)), "MTI "+ex.mti)
	bitmap, _ := msg.GetBytes(FieldBitmap)
	var primary, secondary []string
	for id := 2; id <= len(bitmap)*8; id++ {
		if id != 65 && msg.Bitmap().IsSet(id) {
			if id < 65 {
				primary = append(primary, fmt.Sprint(id))
			} else {
				secondary = append(secondary, fmt.Sprint(id))
			}
		}
	}
	bit1 := ""
	if len(secondary) > 0 {
		bit1 = "1 (secondary bitmap follows) "
	}
	line(hex.EncodeToString(bitmap[:8]), "primary bitmap: DE "+bit1+strings.Join(primary, " "))
	if len(secondary) > 0 {
		line(hex.EncodeToString(bitmap[8:]), "secondary bitmap: DE "+strings.Join(secondary, " "))
	}
	ids := slices.Sorted(func(yield func(int) bool) {
		for _, f := range ex.fields {
			if !yield(f.id) {
				return
			}
		}
		if ex.signed {
			yield(MACField(msg))
		}
	})
	for _, id := range ids {
		def := fieldDefs[id]
		packed, err := msg.GetField(id).Pack()
		if err != nil {
			t.Fatalf("%s: pack DE%d: %v", ex.file, id, err)
		}
		prefix, value := packed[:def.digits], packed[def.digits:]
		head := fmt.Sprintf("DE%d %s %s", id, formatOf(def), def.name)
		switch {
		case id == FieldICC:
			line(hex.EncodeToString(prefix), fmt.Sprintf("%s, length %s:", head, prefix))
			for _, el := range splitTLV(t, value) {
				line("  "+hex.EncodeToString(el[:3])+" "+hex.EncodeToString(el[3:]), "  "+tlvName[hex.EncodeToString(el[:2])])
			}
		case id == FieldPrivateTokenData:
			line(hex.EncodeToString(prefix), fmt.Sprintf("%s, length %s, subelements:", head, prefix))
			for rest := string(value); rest != ""; {
				n := 0
				fmt.Sscanf(rest[2:5], "%d", &n)
				el := rest[:5+n]
				line("  "+hex.EncodeToString([]byte(el[:5]))+" "+hex.EncodeToString([]byte(el[5:])),
					fmt.Sprintf("  tag %s, length %s: %s %q", el[:2], el[2:5], tokenDataTagName[el[:2]], el[5:]))
				rest = rest[5+n:]
			}
		case def.kind == kindBinary:
			line(hex.EncodeToString(value), head)
		default:
			hexCol := hex.EncodeToString(value)
			if len(prefix) > 0 {
				hexCol = hex.EncodeToString(prefix) + " " + hexCol
				head += fmt.Sprintf(", length %s", prefix)
			}
			comment := fmt.Sprintf("%s: %q", head, value)
			if id == FieldOriginalData {
				v := string(value)
				comment = fmt.Sprintf("%s: MTI %s, DE11 %s, DE7 %s, acquirer %s, forwarder %s",
					head, v[:4], v[4:10], v[10:20], v[20:31], v[31:42])
			}
			for len(hexCol) > 58 {
				line(hexCol[:50], comment)
				hexCol, comment = "  "+hexCol[50:], ""
			}
			line(hexCol, comment)
		}
	}
	return b.String()
}

var tlvName = map[string]string{
	"9f26": "9F26 application cryptogram (ARQC)",
	"9f36": "9F36 application transaction counter (ATC) 42",
	"9f37": "9F37 unpredictable number",
	"9f34": "9F34 CVM results: verified on the phone",
}

var tokenDataTagName = map[string]string{
	tokenDataTagToken:     "token",
	tokenDataTagRequestor: "token requestor ID",
	tokenDataTagDevice:    "device ID",
}

// splitTLV splits the two-byte-tag, one-byte-length TLVs of the examples.
func splitTLV(t testing.TB, b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 3 || len(b) < 3+int(b[2]) {
			t.Fatalf("bad TLV %x", b)
		}
		n := 3 + int(b[2])
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// parseHexFrame reads an annotated hex file: everything after '#' on a line
// is a comment, whitespace is ignored, the rest is the frame in hex, length
// header included.
func parseHexFrame(text string) ([]byte, error) {
	var digits strings.Builder
	for line := range strings.Lines(text) {
		line, _, _ = strings.Cut(line, "#")
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	return hex.DecodeString(digits.String())
}

// testdataFrames returns each testdata/frames file's bytes, by file name.
func testdataFrames(t testing.TB) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "frames", "*.hex"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata/frames/*.hex: %v", err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		text, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		frame, err := parseHexFrame(string(text))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[filepath.Base(p)] = frame
	}
	return out
}

// The committed files are what the examples pack to. With -update the
// files are rewritten instead.
func TestExampleFrames(t *testing.T) {
	for _, ex := range examples {
		t.Run(ex.file, func(t *testing.T) {
			msg := ex.message(t)
			payload, err := Pack(msg)
			if err != nil {
				t.Fatal(err)
			}
			want := annotated(t, ex, msg, payload)
			path := filepath.Join("testdata", "frames", ex.file)
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != want {
				t.Fatalf("%s differs from the example (run with -update if the change is meant):\n got:\n%s\nwant:\n%s", path, got, want)
			}
			frame, err := parseHexFrame(want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(frame[2:], payload) {
				t.Fatalf("annotated hex reads back as %x, want %x", frame[2:], payload)
			}
		})
	}
}

// Every committed frame is one well-formed frame that unpacks and packs
// back to exactly its bytes.
func TestTestdataFramesRoundTrip(t *testing.T) {
	frames := testdataFrames(t)
	if len(frames) != len(examples) {
		t.Errorf("%d files in testdata/frames, %d examples", len(frames), len(examples))
	}
	for name, stream := range frames {
		t.Run(name, func(t *testing.T) {
			fr := NewFrameReader(bytes.NewReader(stream), FrameBytesMaxDefault)
			frame, err := fr.Next()
			if err != nil {
				t.Fatalf("Next: %v", err)
			}
			if _, err := fr.Next(); err != io.EOF {
				t.Fatalf("after the frame: %v, want io.EOF", err)
			}
			msg, err := Unpack(frame)
			if err != nil {
				t.Fatalf("Unpack: %v", err)
			}
			if mti, _ := msg.GetMTI(); mti != strings.Split(name, "-")[2] {
				t.Errorf("MTI %s, the file name says %s", mti, name)
			}
			packed, err := Pack(msg)
			if err != nil || !bytes.Equal(packed, frame) {
				t.Fatalf("Pack = %x, %v; want %x", packed, err, frame)
			}
		})
	}
}

// The examples are one consistent exchange, as docs/wire.md tells it.
func TestExamplesTellOneStory(t *testing.T) {
	byFile := map[string]example{}
	for _, ex := range examples {
		byFile[ex.file[:2]] = ex
	}
	term, toTerm, toIssuer, fromIssuer, reversal, echo, echoResp :=
		byFile["01"], byFile["02"], byFile["03"], byFile["04"], byFile["05"], byFile["06"], byFile["07"]

	if !LuhnValid(exToken) || !LuhnValid(exPAN) {
		t.Error("example token and PAN must be Luhn-valid")
	}
	for _, ex := range []example{term, toTerm, reversal} {
		if ex.get(FieldPAN) != exToken {
			t.Errorf("%s: DE2 = %s, want the token", ex.file, ex.get(FieldPAN))
		}
	}
	for _, ex := range []example{toIssuer, fromIssuer} {
		if ex.get(FieldPAN) != exPAN {
			t.Errorf("%s: DE2 = %s, want the PAN", ex.file, ex.get(FieldPAN))
		}
	}
	td, err := ParseTokenData(toIssuer.get(FieldPrivateTokenData))
	if err != nil || td.Token != PAN(term.get(FieldPAN)) || td.RequestorID == "" || td.DeviceID == "" {
		t.Errorf("DE48 to the issuer = %+v, %v; want the terminal's token with requestor and device", td, err)
	}
	same := func(a, b example, ids ...int) {
		for _, id := range ids {
			if a.get(id) != b.get(id) {
				t.Errorf("DE%d: %s has %q, %s has %q", id, a.file, a.get(id), b.file, b.get(id))
			}
		}
	}
	same(term, toTerm, FieldProcessingCode, FieldAmount, FieldTransmissionTime, FieldSTAN, FieldRRN, FieldTerminalID, FieldMerchantID, FieldCurrency)
	same(term, toIssuer, FieldProcessingCode, FieldAmount, FieldLocalTime, FieldLocalDate, FieldMCC, FieldPOSEntryMode, FieldAcquirer, FieldRRN, FieldTerminalID, FieldMerchantID, FieldMerchantNameLocation, FieldCurrency)
	same(toIssuer, fromIssuer, FieldProcessingCode, FieldAmount, FieldTransmissionTime, FieldSTAN, FieldRRN, FieldTerminalID, FieldCurrency)
	same(fromIssuer, toTerm, FieldAuthCode, FieldResponseCode)
	same(echo, echoResp, FieldTransmissionTime, FieldSTAN, FieldNetworkMgmtCode)
	if toIssuer.get(FieldForwarder) != exSwitch || toIssuer.get(FieldReceivingInstitution) != exIssuer {
		t.Errorf("switch -> issuer: DE33 %s DE100 %s", toIssuer.get(FieldForwarder), toIssuer.get(FieldReceivingInstitution))
	}
	wantDE90 := term.mti + term.get(FieldSTAN) + term.get(FieldTransmissionTime) +
		fmt.Sprintf("%011s", term.get(FieldAcquirer)) + fmt.Sprintf("%011s", term.get(FieldForwarder))
	wantDE90 = strings.ReplaceAll(wantDE90, " ", "0")
	if reversal.get(FieldOriginalData) != wantDE90 {
		t.Errorf("DE90 = %s, want %s", reversal.get(FieldOriginalData), wantDE90)
	}
	for _, ex := range []example{term, toTerm, reversal} {
		for _, f := range ex.fields {
			if strings.Contains(f.value, exPAN) {
				t.Errorf("%s: DE%d carries the PAN to the terminal side", ex.file, f.id)
			}
		}
	}
}

// The terminal side's example frames carry a MAC that verifies under the
// example terminal's key (docs/wire.md section 11), in DE64 or, with a
// secondary bitmap, DE128; the issuer side's carry none.
func TestExampleFramesMACs(t *testing.T) {
	frames := testdataFrames(t)
	for _, ex := range examples {
		payload := frames[ex.file][2:]
		field, present, err := mac.Field(payload)
		if err != nil || present != ex.signed {
			t.Errorf("%s: MAC field %d present %v (%v), want present %v", ex.file, field, present, err, ex.signed)
			continue
		}
		if !ex.signed {
			continue
		}
		if err := mac.Verify(exTerminalKey, payload); err != nil {
			t.Errorf("%s: %v", ex.file, err)
		}
		tampered := bytes.Clone(payload)
		tampered[len(tampered)/2] ^= 1
		if mac.Verify(exTerminalKey, tampered) == nil {
			t.Errorf("%s: a changed byte still verifies", ex.file)
		}
	}
}
