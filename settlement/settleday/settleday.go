// Package settleday settles one business day: it reads the day's sealed
// journal files of every switch node, turns each settling entry into a
// transaction, prices it, nets the members' positions, and writes, in
// OUT/<day>/, one clearing file per member and role, the net-settlement
// report as text and JSON, and the exceptions report as text and JSON.
//
// One bad record never holds back the day: a settling record that cannot
// be settled for a reason about that record (an acquirer that is the
// network itself or no member, an issuer that is no member, a field the
// clearing format cannot carry, the other half of a quarantined reversal
// pair) is quarantined by settlement/quarantine: listed in
// exceptions-<day>.txt and .json, and left out of the clearing files and the
// netting, which still sums to zero over what settled. Corrupt input (a
// sealed file failing its digest or a record its CRC, a sealed PAN the keys
// cannot open) still fails the whole run, with nothing written.
//
// Order and atomicity:
//
//   - Input order is node ID (byte order), then journal Seq: the order the
//     clearing writer requires, so output is identical on every run. The
//     day is read twice: the first pass only decides what to quarantine
//     (a reversal may come before its original), the second writes.
//   - Every output goes to a temporary name first; only when all files are
//     written and synced are they renamed into place and the directory
//     synced. A crash leaves temporary files (removed by the next run) and
//     never a partial file under a final name.
//   - A lock file (flock) makes a second concurrent run for the same day
//     fail at once rather than write alongside the first.
//   - Memory is bounded: entries stream from the sealed files; only the
//     member writers (two per member), the netting totals and the
//     quarantined records (at most quarantine.RecordsMax of their own) are
//     held.
package settleday

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/settlement"
	"github.com/tapswitch/tapswitch/settlement/clearing"
	"github.com/tapswitch/tapswitch/settlement/fees"
	"github.com/tapswitch/tapswitch/settlement/netting"
	"github.com/tapswitch/tapswitch/settlement/quarantine"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// Config is one run.
type Config struct {
	Day               string          // YYYYMMDD
	SealedDirs        []string        // each node's DATA/sealed directory
	Keys              *vault.DataKeys // the data keys only: settle holds no index key or token master
	Issuers           []issuers.Issuer
	Fees              *fees.Schedule
	SwitchInstitution string
	Out               string // files go to Out/<Day>/
}

// Result says what a run wrote.
type Result struct {
	Dir          string
	Files        []string // final names, sorted
	Entries      int      // journal entries read
	Transactions int      // of them, settled
	// Quarantined settling records were left out; Exceptions is the text
	// report that lists them (written on every run, empty or not).
	Quarantined       int
	QuarantinedAmount iso8583.Amount // gross, in fen
	Exceptions        string
}

// ErrLocked is returned when another run holds the day's lock.
var ErrLocked = errors.New("another settle run holds this day's lock")

// Run settles cfg.Day.
func Run(cfg Config) (Result, error) {
	res := Result{Dir: filepath.Join(cfg.Out, cfg.Day)}
	sealed, err := sealedFiles(cfg.SealedDirs, cfg.Day)
	if err != nil {
		return res, err
	}
	if err := os.MkdirAll(res.Dir, 0o750); err != nil {
		return res, err
	}
	unlock, err := lockDay(res.Dir)
	if err != nil {
		return res, err
	}
	defer unlock()
	removeTemporaries(res.Dir)
	d, err := newDay(cfg, res.Dir)
	if err != nil {
		return res, err
	}
	defer d.abandon()
	for _, pass := range []func(journal.Entry) error{d.survey, d.add} {
		for _, path := range sealed {
			if _, _, err := journal.ReadSealed(path, pass); err != nil {
				return res, err
			}
		}
	}
	res.Entries, res.Transactions = d.entries, d.txns
	res.Quarantined, res.QuarantinedAmount = d.exceptions.Count, d.exceptions.Amount
	res.Exceptions = filepath.Join(res.Dir, exceptionsName(cfg.Day)+".txt")
	res.Files, err = d.commit()
	return res, err
}

// sealedFiles finds each node's sealed file of day, in node-ID order. A node
// directory without one is an error unless it has sealed a later day (so
// this day closed with no traffic on that node).
func sealedFiles(dirs []string, day string) ([]string, error) {
	var paths []string
	for _, dir := range dirs {
		matches, _ := filepath.Glob(filepath.Join(dir, "*-"+day+".sealed"))
		switch {
		case len(matches) == 1:
			paths = append(paths, matches[0])
		case len(matches) > 1:
			return nil, fmt.Errorf("%s holds %d sealed files of %s", dir, len(matches), day)
		case !sealedLater(dir, day):
			return nil, fmt.Errorf("%s: day %s is not sealed yet (the switch seals a day seal_grace after its cut-off, or at its next start)", dir, day)
		}
	}
	sort.Slice(paths, func(i, j int) bool { return filepath.Base(paths[i]) < filepath.Base(paths[j]) })
	return paths, nil
}

func sealedLater(dir, day string) bool {
	all, _ := filepath.Glob(filepath.Join(dir, "*.sealed"))
	for _, p := range all {
		name := strings.TrimSuffix(filepath.Base(p), ".sealed")
		if i := strings.LastIndexByte(name, '-'); i >= 0 && name[i+1:] > day {
			return true
		}
	}
	return false
}

// lockDay takes an exclusive, non-blocking lock on dir/.lock.
func lockDay(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w (%s)", ErrLocked, dir)
	}
	return func() { f.Close() }, nil
}

func removeTemporaries(dir string) {
	tmps, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
	for _, p := range tmps {
		os.Remove(p)
	}
}

// output is one file being written under its temporary name.
type output struct {
	final, tmp string
	f          *os.File
	buf        *bufio.Writer
	clr        *clearing.Writer
}

// day is a run in progress.
type day struct {
	cfg           Config
	dir           string
	members       *quarantine.Members
	sorter        *quarantine.Sorter
	exceptions    *quarantine.Report
	net           *netting.Netting
	files         map[string]*output // by file ID
	entries, txns int
}

func newDay(cfg Config, dir string) (*day, error) {
	d := &day{cfg: cfg, dir: dir, files: map[string]*output{}}
	instOf := map[string]string{}
	members := make([]netting.Member, 0, len(cfg.Issuers))
	for _, is := range cfg.Issuers {
		instOf[is.ID] = is.Institution
		members = append(members, netting.Member{Institution: is.Institution, Name: is.ID})
	}
	d.members = quarantine.NewMembers(cfg.SwitchInstitution, instOf)
	d.sorter = quarantine.NewSorter(d.members)
	d.exceptions = quarantine.NewReport(cfg.Day, cfg.SwitchInstitution)
	net, err := netting.New(cfg.Day, cfg.SwitchInstitution, members)
	d.net = net
	return d, err
}

// survey takes one journal entry of the day on the first pass.
func (d *day) survey(e journal.Entry) error {
	if !settlement.Settles(&e) {
		return nil
	}
	return d.sorter.Survey(&e)
}

// add takes one journal entry of the day on the second pass: it settles
// it, or lists it in the exceptions report.
func (d *day) add(e journal.Entry) error {
	d.entries++
	if !settlement.Settles(&e) {
		return nil
	}
	if f := d.sorter.Decide(&e); f != nil {
		return d.exceptions.Add(&e, f)
	}
	t, err := d.txn(&e)
	if err != nil {
		return err
	}
	f, err := d.cfg.Fees.For(&t)
	if err != nil {
		return fmt.Errorf("fees of %s/%d: %w", e.NodeID, e.Seq, err)
	}
	if err := d.net.Add(&t, f); err != nil {
		return err
	}
	for _, side := range []struct {
		inst string
		role clearing.Role
	}{{t.IssuerInstitution, clearing.Issuer}, {t.Acquirer, clearing.Acquirer}} {
		out, err := d.output(side.inst, side.role)
		if err == nil {
			err = out.clr.Write(&t, f)
		}
		if err != nil {
			return err
		}
	}
	d.txns++
	return nil
}

// txn builds the settlement transaction of an entry the sorter let
// through, opening its sealed PAN. Everything but the PAN was checked, so
// an error here is about the sealed PAN or the keys: corruption, which
// fails the run.
func (d *day) txn(e *journal.Entry) (settlement.Txn, error) {
	pan, err := d.cfg.Keys.Open(e.PANSealed, []byte("journal:"+e.Token))
	if err != nil {
		return settlement.Txn{}, fmt.Errorf("entry %s/%d: open sealed PAN: %w", e.NodeID, e.Seq, err)
	}
	inst, _ := d.members.Institution(e.IssuerID)
	orig, _ := e.OriginalKey()
	t, err := settlement.FromEntry(e, settlement.Supplied{PAN: iso8583.PAN(pan), IssuerInstitution: inst, Original: orig})
	if err != nil {
		return t, fmt.Errorf("entry %s/%d: the sealed PAN opened to no card number: %w", e.NodeID, e.Seq, err)
	}
	return t, nil
}

// exceptionsName is the exceptions report's name without its extension.
func exceptionsName(day string) string { return "exceptions-" + day }

// output returns the writer of a member's file in a role, opening it.
func (d *day) output(inst string, role clearing.Role) (*output, error) {
	id := clearing.FileID(d.cfg.Day, inst, role)
	if o, ok := d.files[id]; ok {
		return o, nil
	}
	o := &output{final: filepath.Join(d.dir, id+".clr"), tmp: filepath.Join(d.dir, id+".clr.tmp")}
	f, err := os.OpenFile(o.tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, err
	}
	o.f, o.buf = f, bufio.NewWriterSize(f, 256<<10)
	if o.clr, err = clearing.NewWriter(o.buf, clearing.NewHeader(d.cfg.Day, inst, role, d.cfg.SwitchInstitution)); err != nil {
		f.Close()
		return nil, err
	}
	d.files[id] = o
	return o, nil
}
