package iso8583

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	moverrors "github.com/moov-io/iso8583/errors"
)

// bitmapFor builds the wire bitmap for the given data elements by hand,
// independently of moov: 8 bytes, or 16 with bit 1 set when any of DE65-128
// is present.
func bitmapFor(ids ...int) string {
	n := 8
	if slices.ContainsFunc(ids, func(id int) bool { return id > 64 }) {
		n = 16
		ids = append([]int{1}, ids...)
	}
	b := make([]byte, n)
	for _, id := range ids {
		b[(id-1)/8] |= 0x80 >> ((id - 1) % 8)
	}
	return string(b)
}

// fieldCase is one data element: what the sender sets, its bytes on the
// wire (length prefix included) and what GetBytes gives after unpacking.
type fieldCase struct {
	id   int
	set  string
	wire string
	got  string
}

func f(id int, set, wire, got string) fieldCase { return fieldCase{id, set, wire, got} }

// same is a field whose set value, wire form and unpacked value agree.
func same(id int, v string) fieldCase { return fieldCase{id, v, v, v} }

func TestPackUnpack(t *testing.T) {
	icc := "\x9f\x26\x08\x01\x02\x03\x04\x05\x06\x07\x08\x9f\x36\x02\x00\x17\x9f\x37\x04\x00\xff\x7f\x80\x9f\x34\x03\x01\x00\x02"
	tests := []struct {
		name   string
		mti    string
		fields []fieldCase
	}{{
		name: "every field kind",
		mti:  "0200",
		fields: []fieldCase{
			f(FieldPAN, "6288880012345679", "16"+"6288880012345679", "6288880012345679"),                                       // LLVAR n
			same(FieldProcessingCode, "000000"),                                                                                // n 6, all zeros kept
			f(FieldAmount, "2599", "000000002599", "000000002599"),                                                             // n 12, zero-padded left
			f(FieldSTAN, "42", "000042", "000042"),                                                                             // leading zeros survive unpack
			f(FieldAcquirer, "03080000", "08"+"03080000", "03080000"),                                                          // LLVAR n, zeros not stripped
			f(FieldTerminalID, "TERM01", "TERM01  ", "TERM01"),                                                                 // ans 8, space-padded right
			same(FieldMerchantNameLocation, "Jinyuan Supermarket      Beijing      CN"),                                        // ans 40
			f(FieldPrivateTokenData, "01016"+"6288880012345679", "021"+"01016"+"6288880012345679", "01016"+"6288880012345679"), // LLLVAR ans
			same(FieldPINBlock, "\x00\x11\x22\x33\x44\x55\x66\xff"),                                                            // b 8
			f(FieldICC, icc, "029"+icc, icc),                                                                                   // LLLVAR b
			same(FieldMAC, "\xde\xad\xbe\xef\x00\x00\x00\x01"),                                                                 // b 8
		},
	}, {
		name: "LLVAR and LLLVAR at their maximum",
		mti:  "0100",
		fields: []fieldCase{
			f(FieldPAN, "6222020200112345679", "19"+"6222020200112345679", "6222020200112345679"),
			f(FieldAcquirer, "12345678901", "11"+"12345678901", "12345678901"),
			f(FieldPrivateTokenData, strings.Repeat("x", 999), "999"+strings.Repeat("x", 999), strings.Repeat("x", 999)),
			f(FieldAdditionalAmounts, strings.Repeat("1", 120), "120"+strings.Repeat("1", 120), strings.Repeat("1", 120)),
			f(FieldICC, strings.Repeat("\xff", 255), "255"+strings.Repeat("\xff", 255), strings.Repeat("\xff", 255)),
		},
	}, {
		name: "LLVAR of one digit",
		mti:  "0110",
		fields: []fieldCase{
			f(FieldForwarder, "7", "01"+"7", "7"),
		},
	}, {
		name: "secondary bitmap with DE70, DE90, DE100 and DE128",
		mti:  "0400",
		fields: []fieldCase{
			same(FieldSTAN, "000124"),
			same(FieldNetworkMgmtCode, "301"),
			same(FieldOriginalData, "0200"+"000123"+"1125083015"+"00003080000"+"00000000000"),
			f(FieldReceivingInstitution, "01020000", "08"+"01020000", "01020000"),
			same(FieldMAC2, "\x01\x02\x03\x04\x05\x06\x07\x08"),
		},
	}, {
		name: "only secondary fields",
		mti:  "0800",
		fields: []fieldCase{
			same(FieldNetworkMgmtCode, "001"),
		},
	}, {
		name: "no data elements",
		mti:  "0800",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ids := make([]int, 0, len(tt.fields))
			want := []byte(tt.mti)
			for _, fc := range tt.fields {
				ids = append(ids, fc.id)
			}
			want = append(want, bitmapFor(ids...)...)
			for _, fc := range tt.fields {
				want = append(want, fc.wire...)
			}

			msg := NewMessage()
			msg.MTI(tt.mti)
			for _, fc := range tt.fields {
				if err := msg.BinaryField(fc.id, []byte(fc.set)); err != nil {
					t.Fatalf("set DE%d: %v", fc.id, err)
				}
			}
			packed, err := Pack(msg)
			if err != nil {
				t.Fatalf("Pack: %v", err)
			}
			if !bytes.Equal(packed, want) {
				t.Fatalf("Pack:\n got %q\nwant %q", packed, want)
			}

			got, err := Unpack(want)
			if err != nil {
				t.Fatalf("Unpack: %v", err)
			}
			if mti, _ := got.GetMTI(); mti != tt.mti {
				t.Errorf("MTI = %q, want %q", mti, tt.mti)
			}
			for _, fc := range tt.fields {
				v, err := got.GetBytes(fc.id)
				if err != nil || string(v) != fc.got {
					t.Errorf("DE%d = %q, %v; want %q", fc.id, v, err, fc.got)
				}
			}
			for id := range fieldDefs {
				if !slices.Contains(ids, id) && got.Bitmap().IsSet(id) {
					t.Errorf("DE%d set after unpacking, was not sent", id)
				}
			}
			repacked, err := Pack(got)
			if err != nil || !bytes.Equal(repacked, want) {
				t.Errorf("Pack(Unpack(frame)) = %q, %v; want the frame back", repacked, err)
			}
		})
	}
}

func TestPackRefusesValuesThatDoNotFit(t *testing.T) {
	tests := []struct {
		name  string
		id    int
		value string
	}{
		{"fixed numeric too long", FieldProcessingCode, "0000000"},
		{"fixed text too long", FieldTerminalID, "TERMINAL1"},
		{"fixed binary too short", FieldPINBlock, "\x01\x02"},
		{"LLVAR over its maximum", FieldPAN, strings.Repeat("1", 20)},
		{"LLLVAR over its maximum", FieldICC, strings.Repeat("\x01", 256)},
		{"non-ASCII in a text field", FieldMerchantNameLocation, "北京"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := NewMessage()
			msg.MTI(MTIFinancialRequest)
			if err := msg.BinaryField(tt.id, []byte(tt.value)); err != nil {
				t.Fatal(err)
			}
			if b, err := Pack(msg); err == nil {
				t.Fatalf("Pack = %q, want an error", b)
			}
		})
	}
}

// frameOf builds a frame payload by hand from an MTI, the present data
// elements and their wire bytes in order.
func frameOf(mti string, ids []int, wire ...string) []byte {
	return []byte(mti + bitmapFor(ids...) + strings.Join(wire, ""))
}

// wideFrameOf is frameOf with a secondary bitmap present and all zero, as
// some terminal libraries send every message; ids are all below 65.
func wideFrameOf(mti string, ids []int, wire ...string) []byte {
	bitmap := []byte(bitmapFor(ids...))
	bitmap[0] |= 0x80
	return []byte(mti + string(bitmap) + strings.Repeat("\x00", 8) + strings.Join(wire, ""))
}

// A secondary bitmap that is present but all zero is legal ISO 8583: the
// message unpacks to the same fields as without it, and packs without it.
func TestUnpackAcceptsAllZeroSecondaryBitmap(t *testing.T) {
	tests := []struct {
		name string
		mti  string
		ids  []int
		wire []string
	}{
		{"echo without DE70", "0800", []int{FieldTransmissionTime, FieldSTAN, FieldTerminalID}, []string{"1125083015", "000001", "TERM0001"}},
		{"purchase", "0200", []int{FieldPAN, FieldProcessingCode, FieldAmount, FieldSTAN, FieldTerminalID, FieldCurrency},
			[]string{"16", "6288880012345679", "000000", "000000002599", "000042", "TERM01  ", "156"}},
		{"MAC in DE64", "0800", []int{FieldSTAN, FieldMAC}, []string{"000001", "\x01\x02\x03\x04\x05\x06\x07\x08"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			narrow := frameOf(tt.mti, tt.ids, tt.wire...)
			wide := wideFrameOf(tt.mti, tt.ids, tt.wire...)
			if len(wide) != len(narrow)+8 {
				t.Fatalf("test frames: %d and %d bytes", len(wide), len(narrow))
			}
			want, err := Unpack(narrow)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Unpack(wide)
			if err != nil {
				t.Fatalf("Unpack of the all-zero secondary bitmap: %v", err)
			}
			for _, id := range append([]int{FieldMTI}, tt.ids...) {
				if g, w := FieldValue(got, id), FieldValue(want, id); g != w {
					t.Errorf("DE%d = %q, want %q", id, g, w)
				}
			}
			if n := len(got.GetFields()); n != len(tt.ids)+2 {
				t.Errorf("%d fields with MTI and bitmap, want %d", n, len(tt.ids)+2)
			}
			packed, err := Pack(got)
			if err != nil || !bytes.Equal(packed, narrow) {
				t.Fatalf("Pack = %q, %v; want the frame without the secondary bitmap %q", packed, err, narrow)
			}
			if w, err := WithZeroSecondaryBitmap(narrow); err != nil || !bytes.Equal(w, wide) {
				t.Fatalf("WithZeroSecondaryBitmap = %q, %v; want %q", w, err, wide)
			}
		})
	}
}

func TestWithZeroSecondaryBitmapKeepsASecondaryBitmap(t *testing.T) {
	in := frameOf("0800", []int{FieldSTAN, FieldNetworkMgmtCode}, "000001", "301")
	out, err := WithZeroSecondaryBitmap(in)
	if err != nil || !bytes.Equal(out, in) || &out[0] == &in[0] {
		t.Fatalf("WithZeroSecondaryBitmap = %q, %v; want a copy of %q", out, err, in)
	}
	if _, err := WithZeroSecondaryBitmap([]byte("0800\x00")); err == nil {
		t.Fatal("a message shorter than its bitmap accepted")
	}
}

func TestUnpackFormatErrors(t *testing.T) {
	ids := []int{FieldProcessingCode, FieldAmount, FieldTerminalID}
	tests := []struct {
		name      string
		frame     []byte
		wantField int
		wantMTI   string
		wantText  string // in Error()
	}{
		{"non-digit in fixed numeric field", frameOf("0200", ids, "00A000", "000000002599", "TERM0001"), FieldProcessingCode, "0200", "numeric field"},
		{"space in fixed numeric field", frameOf("0200", ids, "000000", "0000000025 9", "TERM0001"), FieldAmount, "0200", "numeric field"},
		{"non-digit in LLVAR numeric field", frameOf("0100", []int{FieldPAN}, "16", "62888800123456X9"), FieldPAN, "0100", "numeric field"},
		{"control byte in text field", frameOf("0200", ids, "000000", "000000002599", "TERM\x0101 "), FieldTerminalID, "0200", "text field"},
		{"DEL in text field", frameOf("0210", []int{FieldResponseCode}, "0\x7f"), FieldResponseCode, "0210", "text field"},
		{"byte over 0x7f in text field", frameOf("0200", ids, "000000", "000000002599", "TERM\xe901 "), FieldTerminalID, "0200", "ASCII"},
		{"LL prefix +5", frameOf("0200", []int{FieldPAN}, "+5", "12345"), FieldPAN, "0200", "length prefix"},
		{"LL prefix with a space", frameOf("0200", []int{FieldPAN}, " 5", "12345"), FieldPAN, "0200", "length prefix"},
		{"LLL prefix -01", frameOf("0200", []int{FieldICC}, "-01", "\x01"), FieldICC, "0200", "length prefix"},
		{"LLVAR over its maximum", frameOf("0200", []int{FieldPAN}, "20", strings.Repeat("1", 20)), FieldPAN, "0200", "maximum"},
		{"LLLVAR over its maximum", frameOf("0200", []int{FieldICC}, "256", strings.Repeat("\x01", 256)), FieldICC, "0200", "maximum"},
		{"all-zero secondary bitmap, trailing bytes", append(wideFrameOf("0200", ids, "000000", "000000002599", "TERM0001"), "x"...), 0, "0200", "1 bytes follow"},
		{"all-zero secondary bitmap, non-digit", wideFrameOf("0200", ids, "00A000", "000000002599", "TERM0001"), FieldProcessingCode, "0200", "numeric field"},
		{"all-zero secondary bitmap, LL prefix +5", wideFrameOf("0200", []int{FieldPAN}, "+5", "12345"), FieldPAN, "0200", "length prefix"},
		{"all-zero secondary bitmap, truncated field", wideFrameOf("0200", ids, "000000", "00000"), FieldAmount, "0200", ""},
		{"tertiary bitmap", []byte("0800" + "\x80\x00\x00\x00\x00\x00\x00\x00" + "\x80\x00\x00\x00\x00\x00\x00\x00" + "\x00\x00\x00\x00\x00\x00\x00\x00"), FieldBitmap, "0800", "tertiary"},
		{"trailing bytes", append(frameOf("0200", ids, "000000", "000000002599", "TERM0001"), "xx"...), 0, "0200", "2 bytes follow"},
		{"truncated fixed field", frameOf("0200", ids, "000000", "00000"), FieldAmount, "0200", ""},
		{"truncated LLVAR value", frameOf("0200", []int{FieldPAN}, "16", "6288880012"), FieldPAN, "0200", ""},
		{"truncated LLVAR prefix", frameOf("0200", []int{FieldPAN}, "1"), FieldPAN, "0200", ""},
		{"truncated bitmap", []byte("0200\x72\x3c"), FieldBitmap, "0200", ""},
		{"truncated secondary bitmap", []byte("0800\x80\x00\x00\x00\x00\x00\x00\x00\x04"), FieldBitmap, "0800", ""},
		{"MTI only", []byte("0200"), FieldBitmap, "0200", ""},
		{"shorter than an MTI", []byte("02"), FieldMTI, "", ""},
		{"MTI non-digit", frameOf("02X0", ids, "000000", "000000002599", "TERM0001"), FieldMTI, "", "MTI"},
		{"MTI non-digit and a truncated field", frameOf("02X0", ids, "000000", "00000"), FieldAmount, "", ""},
		{"MTI with a byte over 0x7f", frameOf("02\xff0", ids, "000000", "000000002599", "TERM0001"), FieldMTI, "", ""},
		{"field not in the spec", frameOf("0200", []int{FieldProcessingCode, 5}, "000000", "000000002599"), 5, "0200", "not defined"},
		{"secondary field not in the spec", frameOf("0200", []int{FieldProcessingCode, 66}, "000000", "1"), 66, "0200", "not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := Unpack(tt.frame)
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("Unpack error = %v (%T), want *FormatError", err, err)
			}
			if msg == nil {
				t.Error("Unpack returned no message with its FormatError")
			}
			if fe.Field != tt.wantField {
				t.Errorf("Field = %d, want %d (%v)", fe.Field, tt.wantField, err)
			}
			if fe.MTI != tt.wantMTI {
				t.Errorf("MTI = %q, want %q (%v)", fe.MTI, tt.wantMTI, err)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("Error() = %q, want it to mention %q", err.Error(), tt.wantText)
			}
			if tt.wantField > 0 && !strings.HasPrefix(err.Error(), "format error in DE") {
				t.Errorf("Error() = %q, want it to name the data element", err.Error())
			}
			if fe.Unwrap() == nil {
				t.Error("Unwrap() = nil")
			}
		})
	}
}

// The moov error stays reachable for logs that want the raw message.
func TestFormatErrorWrapsUnpackError(t *testing.T) {
	_, err := Unpack(frameOf("0200", []int{5}, "1"))
	var ue *moverrors.UnpackError
	if !errors.As(err, &ue) || ue.FieldID != "5" {
		t.Fatalf("errors.As(%v, *UnpackError) = %v, FieldID %q", err, ue, ue.FieldID)
	}
}

func TestFormatErrorMessage(t *testing.T) {
	cause := errors.New("boom")
	tests := []struct {
		err  *FormatError
		want string
	}{
		{&FormatError{MTI: "0200", Field: 3, Err: cause}, "format error in DE3: boom"},
		{&FormatError{MTI: "0200", Err: cause}, "format error: boom"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
		if !errors.Is(tt.err, cause) {
			t.Errorf("errors.Is(%v, cause) = false", tt.err)
		}
	}
}

// The spec is shared by every connection: unpack and pack on many
// goroutines at once (run with -race).
func TestUnpackConcurrent(t *testing.T) {
	frame := frameOf("0200", []int{FieldPAN, FieldProcessingCode, FieldSTAN}, "16", "6288880012345679", "000000", "000042")
	done := make(chan error)
	for range 8 {
		go func() {
			for range 200 {
				msg, err := Unpack(frame)
				if err != nil {
					done <- err
					return
				}
				b, err := Pack(msg)
				if err == nil && !bytes.Equal(b, frame) {
					err = errors.New("round trip changed the frame")
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
