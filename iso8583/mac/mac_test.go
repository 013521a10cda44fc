package mac

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// frame builds a payload: MTI, bitmaps with the given bits set, body, and
// an 8-byte MAC field slot when macBit is set.
func frame(bits []int, body string) []byte {
	bitmap := make([]byte, 8)
	for _, b := range bits {
		if b > 64 {
			bitmap[0] |= 0x80
		}
	}
	if bitmap[0]&0x80 != 0 {
		bitmap = append(bitmap, make([]byte, 8)...)
	}
	for _, b := range bits {
		bitmap[(b-1)/8] |= 0x80 >> ((b - 1) % 8)
	}
	out := append([]byte("0800"), bitmap...)
	out = append(out, body...)
	for _, b := range bits {
		if b == FieldPrimary || b == FieldSecondary {
			out = append(out, make([]byte, Size)...)
		}
	}
	return out
}

// wide is payload with a secondary bitmap present and all zero, as some
// terminal libraries send every message that has no field of DE65-128.
func wide(payload []byte) []byte {
	out := append([]byte{}, payload[:12]...)
	out[4] |= 0x80
	out = append(out, make([]byte, 8)...)
	return append(out, payload[12:]...)
}

func TestField(t *testing.T) {
	for _, tt := range []struct {
		name      string
		payload   []byte
		field     int
		present   bool
		wantError error
	}{
		{"primary only, DE64", frame([]int{11, 64}, "000001"), FieldPrimary, true, nil},
		{"primary only, no MAC", frame([]int{11}, "000001"), FieldPrimary, false, nil},
		{"secondary, DE128", frame([]int{11, 70, 128}, "000001301"), FieldSecondary, true, nil},
		{"secondary, no MAC", frame([]int{11, 70}, "000001301"), FieldSecondary, false, nil},
		{"secondary with DE64 instead", frame([]int{11, 64, 70}, "000001301"), FieldSecondary, false, nil},
		{"secondary with both", frame([]int{11, 64, 70, 128}, "000001301"), FieldSecondary, false, nil},
		{"all-zero secondary bitmap, DE64", wide(frame([]int{11, 64}, "000001")), FieldPrimary, true, nil},
		{"all-zero secondary bitmap, no MAC", wide(frame([]int{11}, "000001")), FieldPrimary, false, nil},
		{"secondary bitmap with DE128 alone", frame([]int{11, 128}, "000001"), FieldSecondary, true, nil},
		{"secondary bitmap with DE128 alone and DE64", frame([]int{11, 64, 128}, "000001"), FieldSecondary, false, nil},
		{"too short", []byte("0800\x00\x00"), 0, false, ErrShort},
		{"secondary bit, no secondary bitmap", append([]byte("0800"), 0x80, 0, 0, 0, 0, 0, 0, 0), 0, false, ErrShort},
	} {
		t.Run(tt.name, func(t *testing.T) {
			field, present, err := Field(tt.payload)
			if !errors.Is(err, tt.wantError) || (err == nil && (field != tt.field || present != tt.present)) {
				t.Fatalf("Field = %d, %v, %v; want %d, %v, %v", field, present, err, tt.field, tt.present, tt.wantError)
			}
		})
	}
}

func TestSignVerify(t *testing.T) {
	key := TerminalKey(bytes.Repeat([]byte{7}, KeySize), "TERM0001")
	other := TerminalKey(bytes.Repeat([]byte{7}, KeySize), "TERM0002")
	for _, tt := range []struct {
		name   string
		sign   []byte // nil: not signed
		verify []byte
		tamper func([]byte)
		want   error
	}{
		{"signed and verified", key, key, nil, nil},
		{"other terminal's key", key, other, nil, ErrMismatch},
		{"a byte of the body changed", key, key, func(p []byte) { p[20] ^= 1 }, ErrMismatch},
		{"a bit of the bitmap changed", key, key, func(p []byte) { p[5] ^= 0x20 }, ErrMismatch},
		{"the MAC changed", key, key, func(p []byte) { p[len(p)-1] ^= 1 }, ErrMismatch},
		{"unsigned placeholder", nil, key, nil, ErrMismatch},
		{"short key", key, key[:16], nil, ErrKey},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := frame([]int{7, 11, 41, 64}, "1125083000000125TERM0001")
			if tt.sign != nil {
				if err := Sign(tt.sign, p); err != nil {
					t.Fatal(err)
				}
			}
			if tt.tamper != nil {
				tt.tamper(p)
			}
			if err := Verify(tt.verify, p); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
	if err := Verify(key, frame([]int{7, 11}, "1125083000000125")); !errors.Is(err, ErrMissing) {
		t.Fatalf("no MAC field: %v, want ErrMissing", err)
	}
	if err := Sign(key, frame([]int{7, 11}, "1125083000000125")); !errors.Is(err, ErrMissing) {
		t.Fatalf("Sign without a MAC slot: %v, want ErrMissing", err)
	}
}

func TestTerminalKeysDiffer(t *testing.T) {
	a := bytes.Repeat([]byte{1}, KeySize)
	b := bytes.Repeat([]byte{2}, KeySize)
	if bytes.Equal(TerminalKey(a, "TERM0001"), TerminalKey(a, "TERM0002")) ||
		bytes.Equal(TerminalKey(a, "TERM0001"), TerminalKey(b, "TERM0001")) {
		t.Fatal("terminal keys collide across terminals or acquirers")
	}
	if len(TerminalKey(a, "TERM0001")) != KeySize {
		t.Fatal("terminal key is not 32 bytes")
	}
}

// TestVectorOfTheWireDoc reads the test vectors of docs/wire.md section 11
// and holds this package to them: an 0800 with DE70 (MAC in DE128), and an
// 0800 without DE70 that carries an all-zero secondary bitmap (MAC in DE64,
// over both bitmaps as sent).
func TestVectorOfTheWireDoc(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "wire.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		heading string
		field   int
	}{
		{"### MAC test vector\n", FieldSecondary},
		{"### MAC test vector: an all-zero secondary bitmap\n", FieldPrimary},
	} {
		t.Run(tt.heading, func(t *testing.T) {
			v := vectorOf(t, string(doc), tt.heading)
			hexOf := func(name string) []byte {
				b, err := hex.DecodeString(v[name])
				if err != nil || len(b) == 0 {
					t.Fatalf("vector %q: %q: %v", name, v[name], err)
				}
				return b
			}
			acq, tk, msg, want := hexOf("acquirer key"), hexOf("terminal key"), hexOf("message before the MAC"), hexOf("MAC")
			if got := TerminalKey(acq, v["terminal"]); !bytes.Equal(got, tk) {
				t.Fatalf("terminal key %x, the doc says %x", got, tk)
			}
			if got := Sum(tk, msg); !bytes.Equal(got[:], want) {
				t.Fatalf("MAC %x, the doc says %x", got, want)
			}
			if field, present, err := Field(append(msg, want...)); err != nil || !present || field != tt.field {
				t.Fatalf("the vector's message: MAC field %d present %v err %v, want DE%d", field, present, err, tt.field)
			}
			if err := Verify(tk, append(msg, want...)); err != nil {
				t.Fatalf("the vector does not verify: %v", err)
			}
		})
	}
}

// vectorOf reads the "name: value" lines of the text block after heading.
func vectorOf(t *testing.T, doc, heading string) map[string]string {
	t.Helper()
	_, rest, ok := strings.Cut(doc, heading)
	if !ok {
		t.Fatalf("docs/wire.md has no %q", heading)
	}
	_, block, _ := strings.Cut(rest, "```text\n")
	block, _, _ = strings.Cut(block, "```")
	v := map[string]string{}
	for line := range strings.Lines(block) {
		name, value, ok := strings.Cut(line, ":")
		if ok {
			v[strings.TrimSpace(name)] = strings.TrimSpace(value)
		}
	}
	return v
}

// The MAC covers the bitmaps as sent: a message signed with an all-zero
// secondary bitmap verifies as it came, and no longer once the bitmap is
// dropped (as packing it again would), nor the other way round. The switch
// verifies the frame it read, never a re-encoding.
func TestMACCoversTheSecondaryBitmapAsSent(t *testing.T) {
	key := TerminalKey(bytes.Repeat([]byte{7}, KeySize), "TERM0001")
	narrow := frame([]int{7, 11, 41, 64}, "1125083000000125TERM0001")
	wideSigned := wide(narrow)
	if err := Sign(key, wideSigned); err != nil {
		t.Fatal(err)
	}
	if err := Verify(key, wideSigned); err != nil {
		t.Fatalf("signed with the all-zero secondary bitmap: %v", err)
	}
	dropped := append(append([]byte{}, wideSigned[:12]...), wideSigned[20:]...)
	dropped[4] &^= 0x80
	if err := Verify(key, dropped); !errors.Is(err, ErrMismatch) {
		t.Fatalf("the same MAC without the secondary bitmap: %v, want ErrMismatch", err)
	}
	if err := Sign(key, narrow); err != nil {
		t.Fatal(err)
	}
	if err := Verify(key, wide(narrow)); !errors.Is(err, ErrMismatch) {
		t.Fatalf("a MAC over the plain bitmap, sent with a secondary one: %v, want ErrMismatch", err)
	}
}

// fuzzPayloadBytesMax bounds FuzzVerify's input: the switch verifies one
// frame's payload, at most iso8583.FrameBytesMaxDefault bytes. Longer
// inputs only cost hashing time.
const fuzzPayloadBytesMax = 4096

// FuzzVerify: Verify never panics, and accepts only what Sign produced.
func FuzzVerify(f *testing.F) {
	f.Add(frame([]int{11, 64}, "000001"))
	f.Add(frame([]int{11, 70, 128}, "000001301"))
	f.Add(wide(frame([]int{11, 64}, "000001")))
	f.Add([]byte("0800"))
	key := bytes.Repeat([]byte{9}, KeySize)
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) > fuzzPayloadBytesMax {
			return
		}
		if Verify(key, payload) == nil {
			signed := bytes.Clone(payload)
			if err := Sign(key, signed); err != nil || !bytes.Equal(signed, payload) {
				t.Fatalf("Verify accepted %x, which Sign makes %x (%v)", payload, signed, err)
			}
		}
	})
}

// Sum is HMAC-SHA256 cut to Size bytes, whatever the lengths, and does not
// allocate for a message of the hot path.
func TestSumIsHMAC(t *testing.T) {
	for _, keyLen := range []int{0, 1, 32, 64, 65, 100} {
		for _, dataLen := range []int{0, 1, 55, 64, 200, sumStackBytes, sumStackBytes + 1, 5000} {
			key := bytes.Repeat([]byte{byte(keyLen + 1)}, keyLen)
			data := bytes.Repeat([]byte{byte(dataLen)}, dataLen)
			h := hmac.New(sha256.New, key)
			h.Write(data)
			if got, want := Sum(key, data), h.Sum(nil)[:Size]; !bytes.Equal(got[:], want) {
				t.Errorf("key %d bytes, data %d bytes: %x, want %x", keyLen, dataLen, got, want)
			}
		}
	}
	key, data := bytes.Repeat([]byte{7}, KeySize), bytes.Repeat([]byte{'1'}, 400)
	if n := testing.AllocsPerRun(100, func() { Sum(key, data) }); n != 0 {
		t.Errorf("Sum of a 400-byte message: %v allocations", n)
	}
}
