package iso8583

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"testing"

	moov "github.com/moov-io/iso8583"
)

// FuzzFrame reads a byte stream as a connection would and holds every frame
// to the codec's promise: Unpack either refuses it with a *FormatError or
// accepts it; then Pack gives back the frame's bytes in the network's
// canonical form (the same bytes, except that an all-zero secondary bitmap
// is dropped and bit 1 cleared: see canonical), which unpack again to the
// same fields; and the same message with an all-zero secondary bitmap
// added, as some terminal libraries send it, unpacks to the same fields
// too. Seeds: the example frames of testdata/frames, alone, back to back
// and with an all-zero secondary bitmap; testdata/fuzz/FuzzFrame holds the
// rest of the corpus, crashers included.
// fuzzStreamBytesMax bounds FuzzFrame's input: two frames of the largest
// size the reader takes, which covers every frame the wire can carry and
// the reader stepping from one to the next. A longer stream only repeats
// that and costs time, most of all when the fuzzer minimizes it (Go's
// minimizer is quadratic in the input's length).
const fuzzStreamBytesMax = 2 * (frameHeaderBytes + FrameBytesMaxDefault)

// fuzzDE48BytesMax bounds the DE48 parsers' input: DE48 is LLLVAR ans..999,
// so the codec never hands them more.
var fuzzDE48BytesMax = fieldDefs[FieldPrivateTokenData].length

func FuzzFrame(f *testing.F) {
	frames := testdataFrames(f)
	var stream, wide []byte
	for _, name := range slices.Sorted(maps.Keys(frames)) {
		f.Add(frames[name])
		stream = append(stream, frames[name]...)
		payload, err := WithZeroSecondaryBitmap(frames[name][frameHeaderBytes:])
		if err != nil {
			f.Fatal(err)
		}
		if wide, err = AppendFrame(wide, payload); err != nil {
			f.Fatal(err)
		}
	}
	f.Add(stream)
	f.Add(wide)
	f.Fuzz(func(t *testing.T, stream []byte) {
		if len(stream) > fuzzStreamBytesMax {
			return
		}
		fr := NewFrameReader(bytes.NewReader(stream), FrameBytesMaxDefault)
		for {
			frame, err := fr.Next()
			if errors.Is(err, ErrEmptyFrame) {
				continue // the header was consumed: the stream is still in step
			}
			if err != nil {
				return // end of stream, truncated or oversize: nothing more to read
			}
			checkRoundTrip(t, frame)
		}
	})
}

// checkRoundTrip holds one frame to the oracle of FuzzFrame: unpack, pack,
// unpack gives the same fields, and the bytes change only as canonical says.
func checkRoundTrip(t *testing.T, frame []byte) {
	t.Helper()
	msg, err := Unpack(frame)
	if err != nil {
		var fe *FormatError
		if !errors.As(err, &fe) {
			t.Fatalf("Unpack(%q) error %T %v, want *FormatError", frame, err, err)
		}
		if fe.MTI != "" && (checkMTI(fe.MTI) != nil || !bytes.HasPrefix(frame, []byte(fe.MTI))) {
			t.Fatalf("Unpack(%q): FormatError.MTI %q is not the frame's MTI", frame, fe.MTI)
		}
		return
	}
	fields := fieldBytes(t, msg)
	packed, err := Pack(msg)
	if err != nil {
		t.Fatalf("Unpack(%q) accepted it, Pack failed: %v", frame, err)
	}
	if want := canonical(frame); !bytes.Equal(packed, want) {
		t.Fatalf("round trip changed more than an all-zero secondary bitmap:\n in %q\nout %q", frame, packed)
	}
	wide, err := WithZeroSecondaryBitmap(packed)
	if err != nil {
		t.Fatal(err)
	}
	for _, again := range [][]byte{packed, wide} {
		back, err := Unpack(again)
		if err != nil {
			t.Fatalf("Unpack of %q, from the accepted %q: %v", again, frame, err)
		}
		if got := fieldBytes(t, back); !maps.Equal(got, fields) {
			t.Fatalf("Unpack of %q gives fields\n%v\nthe accepted %q gave\n%v", again, got, frame, fields)
		}
	}
}

// canonical is frame as the network itself would send it: an all-zero
// secondary bitmap dropped and bit 1 cleared, every other byte the same.
// It works on the bytes alone, apart from the codec and from
// WithZeroSecondaryBitmap, so the oracle does not check the code with
// itself.
func canonical(frame []byte) []byte {
	const primary, secondary, end = 4, 12, 20
	if len(frame) < end || frame[primary]&0x80 == 0 || !bytes.Equal(frame[secondary:end], make([]byte, 8)) {
		return frame
	}
	out := slices.Concat(frame[:secondary], frame[end:])
	out[primary] &^= 0x80
	return out
}

// fieldBytes is every data element of msg, the MTI as field 0, the bitmap
// left out: its length is what canonical may change.
func fieldBytes(t *testing.T, msg *moov.Message) map[int]string {
	t.Helper()
	out := map[int]string{}
	for id := range msg.GetFields() {
		if id == FieldBitmap {
			continue
		}
		v, err := msg.GetBytes(id)
		if err != nil {
			t.Fatalf("DE%d of an accepted message: %v", id, err)
		}
		out[id] = string(v)
	}
	return out
}

// FuzzTokenData: ParseTokenData never panics, and what it accepts encodes
// back to a value that parses to the same token data.
func FuzzTokenData(f *testing.F) {
	f.Add(TokenData{Token: "6299900012345672", RequestorID: "40010075001", DeviceID: "DEV-1"}.Encode())
	f.Add("01003abc99002zz")
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > fuzzDE48BytesMax {
			return
		}
		td, err := ParseTokenData(s)
		if err != nil {
			return
		}
		back, err := ParseTokenData(td.Encode())
		if err != nil || back != td {
			t.Fatalf("round trip of %q: %+v, %v; want %+v", s, back, err, td)
		}
	})
}
