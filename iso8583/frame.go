package iso8583

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// FrameBytesMaxDefault bounds one message on the wire, header excluded.
const FrameBytesMaxDefault = 4096

// frameHeaderBytes is the 2-byte unsigned big-endian length before each message.
const frameHeaderBytes = 2

// ErrFrameTooLarge is returned for a header announcing more than the bound.
// The stream cannot be resynchronised after it: close the connection.
var ErrFrameTooLarge = errors.New("frame longer than the configured maximum")

// ErrEmptyFrame is returned for a zero length header.
var ErrEmptyFrame = errors.New("frame of zero length")

// readBufferBytes is the read-ahead of a FrameReader: a peer that pipelines
// requests sends many frames per packet, and one read syscall should fetch
// them all rather than two syscalls per frame.
const readBufferBytes = 16 << 10

// FrameReader reads length-prefixed frames into one reused buffer. The slice
// it returns is valid until the next call.
type FrameReader struct {
	r             *bufio.Reader
	buf           []byte
	frameBytesMax int
}

// NewFrameReader reads frames of at most frameBytesMax bytes from r,
// buffering reads.
func NewFrameReader(r io.Reader, frameBytesMax int) *FrameReader {
	if frameBytesMax <= 0 || frameBytesMax > 65535 {
		panic(fmt.Sprintf("frameBytesMax %d outside 1..65535", frameBytesMax))
	}
	return &FrameReader{r: bufio.NewReaderSize(r, readBufferBytes), buf: make([]byte, frameHeaderBytes+frameBytesMax), frameBytesMax: frameBytesMax}
}

// Next returns the next frame's payload. The length is checked before any
// payload byte is read. io.EOF means the peer closed cleanly between frames;
// io.ErrUnexpectedEOF that it closed inside one.
func (fr *FrameReader) Next() ([]byte, error) {
	header := fr.buf[:frameHeaderBytes]
	if _, err := io.ReadFull(fr.r, header); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(header))
	if n == 0 {
		return nil, ErrEmptyFrame
	}
	if n > fr.frameBytesMax {
		return nil, fmt.Errorf("%w: header says %d bytes, maximum %d", ErrFrameTooLarge, n, fr.frameBytesMax)
	}
	payload := fr.buf[frameHeaderBytes : frameHeaderBytes+n]
	if _, err := io.ReadFull(fr.r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return payload, nil
}

// AppendFrame appends payload with its length header to dst.
func AppendFrame(dst, payload []byte) ([]byte, error) {
	if len(payload) == 0 || len(payload) > 65535 {
		return dst, fmt.Errorf("payload of %d bytes cannot be framed", len(payload))
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(payload)))
	return append(dst, payload...), nil
}

// WriteFrame writes payload with its length header in one Write call.
func WriteFrame(w io.Writer, payload []byte) error {
	frame, err := AppendFrame(make([]byte, 0, frameHeaderBytes+len(payload)), payload)
	if err != nil {
		return err
	}
	_, err = w.Write(frame)
	return err
}
