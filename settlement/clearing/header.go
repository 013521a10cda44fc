package clearing

import (
	"fmt"

	"github.com/tapswitch/tapswitch/settlement"
)

// FormatVersion is the layout version this package reads and writes.
// Version 2 added the issuer STAN and transmission time to the detail
// record, in bytes version 1 reserved.
const FormatVersion = 2

// Role is the side of its transactions a file is for.
type Role byte

const (
	// Issuer: the member's cardholders' transactions, with their PANs.
	Issuer Role = 'I'
	// Acquirer: the member's merchants' transactions, with tokens only.
	Acquirer Role = 'A'
)

func (r Role) String() string {
	switch r {
	case Issuer:
		return "issuer"
	case Acquirer:
		return "acquirer"
	}
	return fmt.Sprintf("Role(%q)", byte(r))
}

func (r Role) code() string {
	if r == Issuer {
		return "ISS"
	}
	return "ACQ"
}

// FileID names the file of one member, role and business day, e.g.
// "20260314-01020000-ISS". It is derived, never random or clock-based, so a
// re-run writes the same ID; cmd/settle can use FileID+".clr" as the name.
func FileID(day, institution string, role Role) string {
	return day + "-" + institution + "-" + role.code()
}

// Header is the first record of a file.
//
//	bytes    field               type  content
//	  1-1    record type         F     "H"
//	  2-3    format version      N     02
//	  4-27   file ID             A     FileID(business day, institution, role)
//	 28-38   institution         A     the member's institution ID, 1 to 11 digits
//	 39-39   role                F     I issuer, A acquirer
//	 40-47   business day        N     YYYYMMDD
//	 48-55   creation date       N     YYYYMMDD, equal to the business day
//	 56-66   switch institution  A     the network's institution ID, 1 to 11 digits
//	 67-69   currency            N     ISO 4217 numeric, 156
//	 70-300  reserved            X     spaces
type Header struct {
	Version      int
	FileID       string
	Institution  string
	Role         Role
	BusinessDay  string
	CreationDate string
	Switch       string
	Currency     string
}

var (
	hType     = field{"record type", 1, 1, kindF}
	hVersion  = field{"format version", 2, 2, kindN}
	hFileID   = field{"file ID", 4, 24, kindA}
	hInst     = field{"institution", 28, 11, kindA}
	hRole     = field{"role", 39, 1, kindF}
	hDay      = field{"business day", 40, 8, kindN}
	hCreated  = field{"creation date", 48, 8, kindN}
	hSwitch   = field{"switch institution", 56, 11, kindA}
	hCurrency = field{"currency", 67, 3, kindN}
	hReserved = field{"reserved", 70, 231, kindX}

	headerLayout = []field{hType, hVersion, hFileID, hInst, hRole, hDay, hCreated, hSwitch, hCurrency, hReserved}
)

// NewHeader returns the header of a member's file for a business day. The
// creation date is the business day, not the wall clock, so that running
// the same day again yields the same bytes.
func NewHeader(day, institution string, role Role, switchInst string) Header {
	return Header{
		Version: FormatVersion, FileID: FileID(day, institution, role), Institution: institution,
		Role: role, BusinessDay: day, CreationDate: day, Switch: switchInst, Currency: settlement.Currency,
	}
}

// Validate checks every field and that the derived ones agree.
func (h *Header) Validate() error {
	fail := func(f field, format string, args ...any) error { return fieldError("header", f, format, args...) }
	switch {
	case h.Version != FormatVersion:
		return fail(hVersion, "version %d: this reader knows version %d only", h.Version, FormatVersion)
	case settlement.RuleInstitution.Check("institution", h.Institution) != nil:
		return fail(hInst, "%q: want 1 to 11 digits", h.Institution)
	case h.Role != Issuer && h.Role != Acquirer:
		return fail(hRole, "%q: want I or A", string(rune(h.Role)))
	case !settlement.ValidDay(h.BusinessDay):
		return fail(hDay, "%q: want a date as YYYYMMDD", h.BusinessDay)
	case h.CreationDate != h.BusinessDay:
		return fail(hCreated, "%q: want the business day %s", h.CreationDate, h.BusinessDay)
	case settlement.RuleInstitution.Check("switch", h.Switch) != nil:
		return fail(hSwitch, "%q: want 1 to 11 digits", h.Switch)
	case h.Switch == h.Institution:
		return fail(hSwitch, "%s is the member's own institution", h.Switch)
	case len(h.Currency) != 3 || !allDigits([]byte(h.Currency)):
		return fail(hCurrency, "%q: want 3 digits", h.Currency)
	}
	if want := FileID(h.BusinessDay, h.Institution, h.Role); h.FileID != want {
		return fail(hFileID, "%q: want %q", h.FileID, want)
	}
	return nil
}

// Record returns the 300 bytes of the record, without its newline.
func (h *Header) Record() string { return string(h.appendRecord(nil)) }

func (h *Header) appendRecord(dst []byte) []byte {
	dst = append(dst, make([]byte, RecordBytes)...)
	e := newEncoder(dst[len(dst)-RecordBytes:])
	e.flag(hType, 'H')
	e.num(hVersion, uint64(h.Version))
	e.text(hFileID, h.FileID)
	e.text(hInst, h.Institution)
	e.flag(hRole, byte(h.Role))
	e.digits(hDay, h.BusinessDay)
	e.digits(hCreated, h.CreationDate)
	e.text(hSwitch, h.Switch)
	e.digits(hCurrency, h.Currency)
	return dst
}

// ParseHeader reads and validates a header record (300 bytes, no newline).
func ParseHeader(rec []byte) (Header, error) {
	if err := checkLength(rec, "header"); err != nil {
		return Header{}, err
	}
	d := decoder{rec: rec, record: "header"}
	d.flag(hType, "H")
	h := Header{
		Version:      int(d.num(hVersion)),
		FileID:       d.text(hFileID),
		Institution:  d.text(hInst),
		Role:         Role(d.flag(hRole, "IA")),
		BusinessDay:  d.digits(hDay, false),
		CreationDate: d.digits(hCreated, false),
		Switch:       d.text(hSwitch),
		Currency:     d.digits(hCurrency, false),
	}
	d.reserved(hReserved)
	if d.err != nil {
		return Header{}, d.err
	}
	if err := h.Validate(); err != nil {
		return Header{}, err
	}
	return h, nil
}

func checkLength(rec []byte, record string) *Error {
	if len(rec) != RecordBytes {
		return &Error{Record: record, Reason: fmt.Sprintf("record is %d bytes, want %d", len(rec), RecordBytes)}
	}
	return nil
}
