package clearing

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement"
	"github.com/tapswitch/tapswitch/settlement/fees"
)

// Writer writes one clearing file, record by record, so a file of any size
// is written in constant memory. It makes one Write call per record; give
// it a bufio.Writer. The details must come sorted by node ID and then
// journal seq (one business day per file); the Writer refuses any other
// order rather than sorting, so that the same input always gives the same
// bytes and no record is held back.
type Writer struct {
	w      io.Writer
	state  fileState
	buf    []byte
	err    error // a failed write: the file is incomplete, nothing more is written
	closed bool
	file   [sha256.Size]byte // SHA-256 of the whole file, set by Close
}

// NewWriter validates the header and writes it.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	wr := &Writer{w: w, state: newFileState(h), buf: make([]byte, 0, RecordBytes+1)}
	wr.buf = append(h.appendRecord(wr.buf[:0]), '\n')
	if err := wr.emit(true); err != nil {
		return nil, err
	}
	return wr, nil
}

func (w *Writer) emit(digest bool) error {
	if digest {
		w.state.sum.digest.Write(w.buf)
	}
	if _, err := w.w.Write(w.buf); err != nil {
		w.err = fmt.Errorf("clearing: write %s: %w", w.state.h.FileID, err)
	}
	return w.err
}

// NewDetail makes the record of t for a file of the given role. The card
// number is the PAN in an issuer's file and the token in an acquirer's:
// this is the one place that choice is made. Seq is left for the Writer.
func NewDetail(t *settlement.Txn, f fees.Fees, role Role) (Detail, error) {
	if err := t.Validate(); err != nil {
		return Detail{}, err
	}
	card := t.PAN
	if role == Acquirer {
		card = iso8583.PAN(t.Token)
	}
	return Detail{
		NodeID: t.NodeID, JournalSeq: t.Seq, MTI: t.MTI, ProcessingCode: t.ProcessingCode,
		Direction: t.Direction, Reversal: t.Reversal, Amount: t.Amount, Currency: t.Currency,
		Interchange: f.Interchange, SwitchFee: f.Switch, Time: t.Time.UTC().Truncate(time.Second),
		TransmissionTime: t.TransmissionTime, STAN: t.STAN, RRN: t.RRN, AuthCode: t.AuthCode,
		TerminalID: t.TerminalID, MerchantID: t.MerchantID, MCC: t.MCC, Acquirer: t.Acquirer,
		IssuerID: t.IssuerID, IssuerInstitution: t.IssuerInstitution, Product: t.Product,
		CardNumber: card, StandIn: t.StandIn,
		OriginalSTAN: t.Original.STAN, OriginalTransmissionTime: t.Original.TransmissionTime,
		IssuerSTAN: t.IssuerSTAN, IssuerTransmissionTime: t.IssuerTransmissionTime,
	}, nil
}

// Write adds the record of t, priced at f, to the file.
func (w *Writer) Write(t *settlement.Txn, f fees.Fees) error {
	d, err := NewDetail(t, f, w.state.h.Role)
	if err != nil {
		return err
	}
	return w.WriteDetail(d)
}

// WriteDetail adds a record to the file, numbering it. A record that does
// not validate or is out of order is refused with nothing written; after a
// failed write to the underlying writer every call fails.
func (w *Writer) WriteDetail(d Detail) error {
	if err := w.usable(); err != nil {
		return err
	}
	d.Seq = w.state.sum.t.Count + 1
	if d.Seq > SeqMax {
		return fieldError("detail", dSeq, "the file already holds %d records, the most it can", SeqMax)
	}
	if err := d.Validate(); err != nil {
		return err
	}
	if err := w.state.addDetail(&d); err != nil {
		return err
	}
	w.buf = append(d.appendRecord(w.buf[:0]), '\n')
	return w.emit(true)
}

// Close writes the trailer and returns it. It does not close the
// underlying writer.
func (w *Writer) Close() (Trailer, error) {
	if err := w.usable(); err != nil {
		return Trailer{}, err
	}
	w.closed = true
	t := w.state.sum.trailer()
	w.buf = append(t.appendRecord(w.buf[:0]), '\n')
	if err := w.emit(false); err != nil {
		return Trailer{}, err
	}
	// The digest has hashed every byte before the trailer; carried on over
	// the trailer it is the whole file's SHA-256, with no second pass.
	w.state.sum.digest.Write(w.buf)
	w.state.sum.digest.Sum(w.file[:0])
	return t, nil
}

// FileSHA256 is the SHA-256 of every byte the Writer wrote, trailer
// included; valid after a successful Close.
func (w *Writer) FileSHA256() [sha256.Size]byte { return w.file }

func (w *Writer) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return errors.New("clearing: writer already closed")
	}
	return nil
}

// Encode returns the bytes of a whole file. The details' Seq fields are
// ignored; records are numbered in the order given.
func Encode(h Header, details []Detail) ([]byte, error) {
	var b bytes.Buffer
	w, err := NewWriter(&b, h)
	if err != nil {
		return nil, err
	}
	for _, d := range details {
		if err := w.WriteDetail(d); err != nil {
			return nil, err
		}
	}
	if _, err := w.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
