package iso8583

import (
	"bytes"
	"errors"
	"maps"
	"slices"
	"testing"
)

// FuzzFrame reads a byte stream as a connection would and holds every frame
// to the codec's promise: Unpack either refuses it with a *FormatError or
// accepts it, and then Pack gives back exactly the frame's bytes, which
// unpack again. Seeds: the example frames of testdata/frames, alone and
// back to back; testdata/fuzz/FuzzFrame holds the rest of the corpus,
// crashers included.
func FuzzFrame(f *testing.F) {
	frames := testdataFrames(f)
	var stream []byte
	for _, name := range slices.Sorted(maps.Keys(frames)) {
		f.Add(frames[name])
		stream = append(stream, frames[name]...)
	}
	f.Add(stream)
	f.Fuzz(func(t *testing.T, stream []byte) {
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
	packed, err := Pack(msg)
	if err != nil {
		t.Fatalf("Unpack(%q) accepted it, Pack failed: %v", frame, err)
	}
	if !bytes.Equal(packed, frame) {
		t.Fatalf("round trip changed the frame:\n in %q\nout %q", frame, packed)
	}
	if _, err := Unpack(packed); err != nil {
		t.Fatalf("Unpack of the repacked frame %q: %v", packed, err)
	}
}

// FuzzTokenData: ParseTokenData never panics, and what it accepts encodes
// back to a value that parses to the same token data.
func FuzzTokenData(f *testing.F) {
	f.Add(TokenData{Token: "6299900012345672", RequestorID: "40010075001", DeviceID: "DEV-1"}.Encode())
	f.Add("01003abc99002zz")
	f.Fuzz(func(t *testing.T, s string) {
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
