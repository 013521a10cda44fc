package settleday

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/settlement/transit"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// Transit is the transit part of a day (docs/transit.md, "Inter-city
// clearing"): the tap files the operators uploaded for the day, cleared
// against the operators' master keys and the purse loads of the journals,
// their inter-city fares netted with the bank traffic, and per operator a
// clearing file and a rejections report, with the day's blacklist.
type Transit struct {
	// TapDir holds the day's tap files, TapDir/*.taps (settle -taps
	// DIR gives DIR/<day>). It must exist: a day without a directory is
	// not a day without taps.
	TapDir  string
	Masters map[string][]byte // operators' master keys by operator code
	Cards   transit.Operators
	// DayOf is the business day of a time under the network's cut-off: a
	// tap outside its file's day is rejected.
	DayOf func(time.Time) string
}

// Bounds of a day's tap files: they are held in memory together.
const (
	tapFilesMax    = 10_000
	tapFileBytes   = 16 << 20 // transit's own limit; a larger file is read this far and refused
	tapDayBytesMax = 1 << 30
	// loadDaysBack is how many business days before the day the purse
	// loads are read from (the day itself included: loadDaysBack+1 days).
	// A load older than that is not seen by the balance check.
	loadDaysBack = 30
)

// transitOperator is a transit member as the clearing names it.
type transitOperator struct {
	code, member, institution string
}

// transitMembers maps operator codes to their members, and checks every
// master key belongs to one.
func transitMembers(list []issuers.Issuer, masters map[string][]byte) (map[string]transitOperator, error) {
	ops := map[string]transitOperator{}
	for _, is := range list {
		if is.Kind == issuers.KindTransit {
			ops[is.Operator] = transitOperator{is.Operator, is.ID, is.Institution}
		}
	}
	for code := range masters {
		if _, ok := ops[code]; !ok {
			return nil, fmt.Errorf("operator keys: operator %s is no transit member's operator code (issuers file)", code)
		}
	}
	return ops, nil
}

// readTapFiles reads dir/*.taps in name order.
func readTapFiles(dir string) ([]transit.InFile, []ManifestFile, error) {
	if st, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("tap files: %s does not exist: the day's uploads go there (an empty directory is a day without taps)", dir)
		}
		return nil, nil, fmt.Errorf("tap files: %w", err)
	} else if !st.IsDir() {
		return nil, nil, fmt.Errorf("tap files: %s is not a directory", dir)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.taps"))
	if err != nil {
		return nil, nil, err
	}
	slices.Sort(names)
	if len(names) > tapFilesMax {
		return nil, nil, fmt.Errorf("tap files: %s holds %d, over the %d a day may have", dir, len(names), tapFilesMax)
	}
	var files []transit.InFile
	var listed []ManifestFile
	total := 0
	for _, p := range names {
		f, err := os.Open(p)
		if err != nil {
			return nil, nil, fmt.Errorf("tap files: %w", err)
		}
		data, err := io.ReadAll(io.LimitReader(f, tapFileBytes+1))
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("tap files: %w", err)
		}
		if total += len(data); total > tapDayBytesMax {
			return nil, nil, fmt.Errorf("tap files: %s holds over %d bytes", dir, tapDayBytesMax)
		}
		name := filepath.Base(p)
		sum := sha256.Sum256(data)
		listed = append(listed, ManifestFile{Name: name, Bytes: int64(len(data)), SHA256: hex.EncodeToString(sum[:])})
		if !transit.TapFileNameOK(name) {
			name = strconv.QuoteToASCII(name) // reported, never cleared: see clearTransit
		}
		files = append(files, transit.InFile{Name: name, Data: data})
	}
	return files, listed, nil
}

// journalLoads reads the purse loads for cards of the day's tap files
// from the sealed files of the day and the loadDaysBack days before it, of
// every node settled; a node without a sealed file of an earlier day
// (it did not exist yet) is skipped.
func (d *day) journalLoads(files []transit.InFile) ([]transit.Load, error) {
	cards := map[string]bool{}
	for _, f := range files {
		tf, faults, _ := transit.ReadTapFile(f.Data)
		if tf == nil {
			continue
		}
		for _, t := range tf.Taps {
			cards[t.Card] = true
		}
		for _, x := range faults {
			if x.Tap != nil {
				cards[x.Tap.Card] = true
			}
		}
	}
	log := transit.LoadLog{Want: func(c string) bool { return cards[c] }}
	take := func(e journal.Entry) error { log.Take(&e); return nil }
	day := d.cfg.Day
	for range loadDaysBack + 1 {
		for _, in := range d.inputs {
			path := filepath.Join(filepath.Dir(in.path), journal.SealedFileName(in.node, day))
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && day != d.cfg.Day {
				continue
			}
			node, got, err := journal.ReadSealed(path, take)
			if err != nil {
				return nil, err
			}
			if node != in.node || got != day {
				return nil, fmt.Errorf("sealed file %s holds node %s day %s, not node %s day %s", path, node, got, in.node, day)
			}
		}
		day = journal.PrevDay(day)
	}
	return log.Loads(), nil
}

// clearTransit ingests the day's tap files, nets the fares between
// operators and writes the transit files into the run directory.
func (d *day) clearTransit() error {
	tc := d.cfg.Transit
	ops, err := transitMembers(d.cfg.Issuers, tc.Masters)
	if err != nil {
		return err
	}
	files, listed, err := readTapFiles(tc.TapDir)
	if err != nil {
		return err
	}
	d.tapFiles = listed
	var named []transit.InFile
	var badNames []transit.Rejection
	for _, f := range files {
		if transit.TapFileNameOK(f.Name) {
			named = append(named, f)
		} else {
			badNames = append(badNames, transit.Rejection{File: f.Name, Reason: "file name outside A-Z a-z 0-9 . _ -"})
		}
	}
	loads, err := d.journalLoads(named)
	if err != nil {
		return err
	}
	r := transit.Batch{Cards: tc.Cards, Masters: tc.Masters, Files: named, Loads: loads, Day: d.cfg.Day, DayOf: tc.DayOf}.Ingest()
	r.Rejections = append(r.Rejections, badNames...)
	slices.SortFunc(r.Rejections, func(a, b transit.Rejection) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Reason, b.Reason), cmp.Compare(a.Card, b.Card))
	})
	d.net.EnableTransit()
	for _, p := range transit.Positions(r.Cleared) {
		debtor, creditor := ops[p.Debtor], ops[p.Creditor]
		if err := d.net.AddTransit(debtor.institution, creditor.institution, iso8583.Amount(p.Amount), int64(p.Taps)); err != nil {
			return err
		}
	}
	d.transitCleared, d.transitRejected, d.transitBlacklisted = len(r.Cleared), len(r.Rejections), len(r.Blacklist)
	return d.writeTransit(r, named, ops)
}

// writeTransit writes, per transit member, its clearing file and the
// rejections of its tap files, and for the day the cards to blacklist (the
// body of the switch's POST /admin/transit/blacklist) and the whole
// ingestion report.
func (d *day) writeTransit(r transit.Result, files []transit.InFile, ops map[string]transitOperator) error {
	fileOp := map[string]string{} // tap file name -> the operator its header names
	for _, f := range files {
		if h, err := transit.ReadHeader(f.Data); err == nil {
			fileOp[f.Name] = h.Operator
		}
	}
	perOp := map[string][]transit.Rejection{}
	for _, x := range r.Rejections {
		op := fileOp[x.File]
		if x.File == "loads" {
			op, _ = d.cfg.Transit.Cards.Of(x.Card)
		}
		perOp[op] = append(perOp[op], x)
	}
	day := d.cfg.Day
	write := func(name string, data []byte) error {
		o, err := d.create(name, wholeBufferBytes, true)
		if err == nil {
			_, err = o.buf.Write(data)
		}
		return err
	}
	codes := make([]string, 0, len(ops))
	for code := range ops {
		codes = append(codes, code)
	}
	slices.Sort(codes)
	for _, code := range codes {
		op := ops[code]
		data, _, err := transit.WriteClearing(transit.ClearingHeader{Day: day, Operator: code, Member: op.member,
			Institution: op.institution, SwitchInstitution: d.cfg.SwitchInstitution}, r.Cleared)
		if err != nil {
			return err
		}
		base := TransitFileBase(day, op.institution)
		if err := write(base+".tclr", data); err != nil {
			return err
		}
		if err := write(base+"-rejected.txt", transit.WriteRejections(day, code, op.member, perOp[code])); err != nil {
			return err
		}
	}
	if err := write("transit-blacklist-"+day+".json", transit.BlacklistRequest(r.Blacklist)); err != nil {
		return err
	}
	return write("transit-"+day+".txt", r.Report())
}

// TransitFileBase is the name of an operator's transit files of a day
// without their endings: <day>-<institution>-TRN.
func TransitFileBase(day, institution string) string { return day + "-" + institution + "-TRN" }
