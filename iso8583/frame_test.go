package iso8583

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

// headerOnlyReader serves a frame header and fails the test if anything
// reads past it: the length must be checked before any payload byte.
type headerOnlyReader struct {
	t      *testing.T
	header []byte
}

func (r *headerOnlyReader) Read(p []byte) (int, error) {
	if len(r.header) == 0 {
		r.t.Errorf("read past the frame header")
		return 0, errors.New("read past the frame header")
	}
	n := copy(p, r.header)
	r.header = r.header[n:]
	return n, nil
}

func TestFrameReaderRefusesOversizeBeforeReadingPayload(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		header []byte
	}{
		{"one over the default", FrameBytesMaxDefault, []byte{0x10, 0x01}},
		{"largest header", FrameBytesMaxDefault, []byte{0xff, 0xff}},
		{"one over a small bound", 10, []byte{0x00, 0x0b}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := NewFrameReader(&headerOnlyReader{t: t, header: tt.header}, tt.max)
			frame, err := fr.Next()
			if !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("Next() = %q, %v; want ErrFrameTooLarge", frame, err)
			}
		})
	}
}

func TestFrameReaderNext(t *testing.T) {
	atMax := strings.Repeat("x", FrameBytesMaxDefault)
	tests := []struct {
		name    string
		stream  string
		want    []string // frames read before the error
		wantErr error
	}{
		{"clean EOF", "", nil, io.EOF},
		{"one frame", "\x00\x04" + "0800", []string{"0800"}, io.EOF},
		{"several frames back to back", "\x00\x04" + "0800" + "\x00\x01" + "A" + "\x00\x03" + "xyz", []string{"0800", "A", "xyz"}, io.EOF},
		{"frame of exactly the maximum", "\x10\x00" + atMax, []string{atMax}, io.EOF},
		{"zero length", "\x00\x00", nil, ErrEmptyFrame},
		{"truncated header", "\x00", nil, io.ErrUnexpectedEOF},
		{"truncated header after a frame", "\x00\x01A" + "\x00", []string{"A"}, io.ErrUnexpectedEOF},
		{"truncated payload", "\x00\x10" + "0200", nil, io.ErrUnexpectedEOF},
		{"header alone", "\x00\x10", nil, io.ErrUnexpectedEOF},
		{"oversize after a good frame", "\x00\x01A" + "\x10\x01", []string{"A"}, ErrFrameTooLarge},
	}
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"data+EOF": iotest.DataErrReader,
	}
	for _, tt := range tests {
		for rname, wrap := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				fr := NewFrameReader(wrap(strings.NewReader(tt.stream)), FrameBytesMaxDefault)
				var got []string
				for {
					frame, err := fr.Next()
					if err != nil {
						if !errors.Is(err, tt.wantErr) {
							t.Errorf("Next() error = %v, want %v", err, tt.wantErr)
						}
						break
					}
					got = append(got, string(frame)) // copy: the buffer is reused
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("frames = %q, want %q", got, tt.want)
				}
			})
		}
	}
}

// An empty frame leaves the stream in step: the caller decides whether to
// go on (the switch closes the connection).
func TestFrameReaderAfterEmptyFrame(t *testing.T) {
	fr := NewFrameReader(strings.NewReader("\x00\x00\x00\x04"+"0800"), FrameBytesMaxDefault)
	if _, err := fr.Next(); !errors.Is(err, ErrEmptyFrame) {
		t.Fatalf("Next() error = %v, want ErrEmptyFrame", err)
	}
	frame, err := fr.Next()
	if err != nil || string(frame) != "0800" {
		t.Fatalf("Next() = %q, %v; want 0800", frame, err)
	}
}

func TestFrameReaderPassesReadErrors(t *testing.T) {
	boom := errors.New("connection reset")
	fr := NewFrameReader(iotest.ErrReader(boom), FrameBytesMaxDefault)
	if _, err := fr.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next() error = %v, want %v", err, boom)
	}
	fr = NewFrameReader(io.MultiReader(strings.NewReader("\x00\x05ab"), iotest.ErrReader(boom)), FrameBytesMaxDefault)
	if _, err := fr.Next(); !errors.Is(err, boom) {
		t.Fatalf("Next() error inside a payload = %v, want %v", err, boom)
	}
}

func TestNewFrameReaderBounds(t *testing.T) {
	for _, max := range []int{0, -1, 65536} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewFrameReader(max %d) did not panic", max)
				}
			}()
			NewFrameReader(strings.NewReader(""), max)
		}()
	}
	for _, max := range []int{1, 65535} {
		NewFrameReader(strings.NewReader(""), max)
	}
}

func TestAppendFrame(t *testing.T) {
	big := bytes.Repeat([]byte{'x'}, 65535)
	tests := []struct {
		name    string
		dst     string
		payload []byte
		want    string
		wantErr bool
	}{
		{"short", "", []byte("0800"), "\x00\x04" + "0800", false},
		{"appends to dst", "\x00\x01A", []byte("xyz"), "\x00\x01A" + "\x00\x03xyz", false},
		{"256 bytes", "", bytes.Repeat([]byte{'y'}, 256), "\x01\x00" + strings.Repeat("y", 256), false},
		{"largest", "", big, "\xff\xff" + string(big), false},
		{"empty", "keep", nil, "keep", true},
		{"too long", "keep", append(big, 'x'), "keep", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := AppendFrame([]byte(tt.dst), tt.payload)
			if (err != nil) != tt.wantErr {
				t.Fatalf("AppendFrame error = %v, wantErr %v", err, tt.wantErr)
			}
			if string(got) != tt.want {
				t.Errorf("AppendFrame = %q…, want %q…", trim(got), trim([]byte(tt.want)))
			}
		})
	}
}

func trim(b []byte) []byte {
	if len(b) > 16 {
		return b[:16]
	}
	return b
}

// countingWriter records each Write call.
type countingWriter struct {
	writes [][]byte
	err    error
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(p))
	if w.err != nil {
		return 0, w.err
	}
	return len(p), nil
}

func TestWriteFrame(t *testing.T) {
	w := &countingWriter{}
	if err := WriteFrame(w, []byte("0800")); err != nil {
		t.Fatal(err)
	}
	if len(w.writes) != 1 || string(w.writes[0]) != "\x00\x040800" {
		t.Fatalf("writes = %q, want one write of header and payload", w.writes)
	}

	w = &countingWriter{}
	if err := WriteFrame(w, nil); err == nil || len(w.writes) != 0 {
		t.Fatalf("WriteFrame(empty) = %v with %d writes, want an error and no write", err, len(w.writes))
	}

	boom := errors.New("broken pipe")
	w = &countingWriter{err: boom}
	if err := WriteFrame(w, []byte("0800")); !errors.Is(err, boom) {
		t.Fatalf("WriteFrame error = %v, want %v", err, boom)
	}
}

// What WriteFrame writes, FrameReader reads back.
func TestWriteFrameThenRead(t *testing.T) {
	var buf bytes.Buffer
	payloads := []string{"0800", strings.Repeat("z", FrameBytesMaxDefault), "A"}
	for _, p := range payloads {
		if err := WriteFrame(&buf, []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	fr := NewFrameReader(&buf, FrameBytesMaxDefault)
	for _, want := range payloads {
		got, err := fr.Next()
		if err != nil || string(got) != want {
			t.Fatalf("Next() = %.16q, %v; want %.16q", got, err, want)
		}
	}
	if _, err := fr.Next(); err != io.EOF {
		t.Fatalf("Next() at the end = %v, want io.EOF", err)
	}
}
