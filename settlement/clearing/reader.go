package clearing

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Reader reads a clearing file and validates it as it goes: every record's
// length and fields, the detail records' numbering, order and agreement
// with the header, and at the trailer every control total and the digest,
// recomputed. It reads one record at a time into a fixed buffer, so a file
// of any size is checked in constant memory.
type Reader struct {
	r     *bufio.Reader
	buf   [RecordBytes + 1]byte
	line  int
	state fileState
	tr    Trailer
	err   error // sticky; io.EOF once the file has been read and found good
}

// readBufferBytes is the Reader's buffer over the underlying reader.
const readBufferBytes = 64 << 10

// NewReader reads and validates the header.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{r: bufio.NewReaderSize(r, readBufferBytes)}
	rec, err := rd.readLine()
	if err == io.EOF {
		return nil, &Error{Line: 1, Reason: "empty file: no header record"}
	}
	if err != nil {
		return nil, err
	}
	if rec[0] != 'H' {
		return nil, &Error{Line: 1, Reason: fmt.Sprintf("record type %q: a file starts with the header H", string(rec[0:1]))}
	}
	h, err := ParseHeader(rec[:RecordBytes])
	if err != nil {
		return nil, atLine(err, rd.line)
	}
	rd.state = newFileState(h)
	rd.state.sum.digest.Write(rec)
	return rd, nil
}

// Header returns the file's header.
func (r *Reader) Header() Header { return r.state.h }

// Trailer returns the file's trailer, once Next has returned io.EOF.
func (r *Reader) Trailer() Trailer { return r.tr }

// Next returns the next detail record. After the last one it reads and
// checks the trailer and returns io.EOF if the whole file is good; any other
// error says what is wrong and where, and every later call returns it again.
func (r *Reader) Next() (Detail, error) {
	if r.err != nil {
		return Detail{}, r.err
	}
	d, err := r.next()
	if err != nil {
		r.err = err
	}
	return d, err
}

func (r *Reader) next() (Detail, error) {
	rec, err := r.readLine()
	if err == io.EOF {
		return Detail{}, &Error{Line: r.line, Reason: "the file ends without a trailer record"}
	}
	if err != nil {
		return Detail{}, err
	}
	switch rec[0] {
	case 'D':
		d, err := ParseDetail(rec[:RecordBytes])
		if err != nil {
			return Detail{}, atLine(err, r.line)
		}
		if err := r.state.addDetail(&d); err != nil {
			return Detail{}, atLine(err, r.line)
		}
		r.state.sum.digest.Write(rec)
		return d, nil
	case 'T':
		return Detail{}, r.finish(rec[:RecordBytes])
	case 'H':
		return Detail{}, &Error{Line: r.line, Reason: "a second header record"}
	}
	return Detail{}, &Error{Line: r.line, Reason: fmt.Sprintf("record type %q: want D or T", string(rec[0:1]))}
}

// finish checks the trailer against the file and that nothing follows it.
func (r *Reader) finish(rec []byte) error {
	t, err := ParseTrailer(rec)
	if err != nil {
		return atLine(err, r.line)
	}
	if err := r.state.checkTrailer(t); err != nil {
		return atLine(err, r.line)
	}
	if _, err := r.r.ReadByte(); err == nil {
		return &Error{Line: r.line + 1, Reason: "data after the trailer record"}
	} else if err != io.EOF {
		return fmt.Errorf("clearing: after line %d: %w", r.line, err)
	}
	r.tr = t
	return io.EOF
}

// readLine reads one record and its newline into r.buf. It returns io.EOF
// only at a clean end of file, before any byte of a record.
func (r *Reader) readLine() ([]byte, error) {
	r.line++
	n, err := io.ReadFull(r.r, r.buf[:])
	if err == io.EOF {
		return nil, io.EOF
	}
	line := r.buf[:n]
	if i := bytes.IndexByte(line, '\n'); i >= 0 && i != RecordBytes {
		return nil, &Error{Line: r.line, Reason: fmt.Sprintf("record is %d bytes, want %d", i, RecordBytes)}
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, &Error{Line: r.line, Reason: fmt.Sprintf("record is %d bytes and the file ends without a newline", n)}
	}
	if err != nil {
		return nil, fmt.Errorf("clearing: line %d: %w", r.line, err)
	}
	switch line[RecordBytes] {
	case '\n':
		return line, nil
	case '\r':
		return nil, &Error{Line: r.line, Reason: "record ends in CR LF: records end in LF only"}
	}
	return nil, &Error{Line: r.line, Reason: fmt.Sprintf("record is longer than %d bytes", RecordBytes)}
}

// Read reads and validates a whole file. For large files use a Reader,
// which holds one record at a time.
func Read(r io.Reader) (*File, error) {
	rd, err := NewReader(r)
	if err != nil {
		return nil, err
	}
	f := &File{Header: rd.Header()}
	for {
		d, err := rd.Next()
		if err == io.EOF {
			f.Trailer = rd.Trailer()
			return f, nil
		}
		if err != nil {
			return nil, err
		}
		f.Details = append(f.Details, d)
	}
}
