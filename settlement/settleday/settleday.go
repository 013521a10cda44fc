// Package settleday settles one business day: it reads the day's sealed
// journal file of every switch node, turns each settling entry into a
// transaction, prices it, nets the members' positions, and publishes, as
// OUT/<day>, one clearing file per member and role, the net-settlement
// report and the exceptions report (text and JSON each), and a manifest.
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
// With Config.Transit the day's tap files are cleared too (transit.go):
// the fares between transit operators go into the same netting, and each
// operator gets a transit clearing file and a rejections report, with the
// day's blacklist and ingestion report, in the same directory and
// manifest. Without it the output is the bank traffic's alone.
//
// Inputs, order and atomicity:
//
//   - Every node of the network seals every closed business day, traffic
//     or not, so Run wants one sealed file per node (Config.Nodes) and
//     refuses, naming the node and the day, when one is missing. A node is
//     settled without only when the operator names it (Config.Without),
//     and the manifest records that.
//   - Input order is node ID (byte order), then journal Seq: the order the
//     clearing writer requires, so output is identical on every run. The
//     day is read twice: the first pass only decides what to quarantine
//     (a reversal may come before its original), the second writes.
//   - Every member gets its issuer and its acquirer file every day, with
//     no detail records when it had no traffic in that role, so a missing
//     file is never "no traffic".
//   - Output is published whole (publish.go): written into a run directory
//     of its own, synced, listed with every file's SHA-256 in
//     manifest-<day>.json (written last), then made visible by renaming a
//     new symlink over OUT/<day>. A crash leaves the previous run or the
//     new one visible, never a mix; a re-run replaces the whole day.
//   - A lock file (flock) makes a second concurrent run for the same day
//     fail at once rather than write alongside the first.
//   - Memory is bounded: entries stream from the sealed files; only the
//     member writers (two per member), the netting totals and the
//     quarantined records (at most quarantine.RecordsMax of their own) are
//     held.
package settleday

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

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
	Nodes             []Node          // every node of the network
	Without           []string        // IDs of nodes the operator settles without
	Keys              *vault.DataKeys // the data keys only: settle holds no index key or token master
	Issuers           []issuers.Issuer
	Fees              *fees.Schedule
	SwitchInstitution string
	Out               string // the day is published as Out/<Day>
	// Transit, when set, clears the day's tap files too (transit.go);
	// without it the output is the bank traffic's alone.
	Transit *Transit
}

// Result says what a run wrote.
type Result struct {
	Dir          string   // Out/<Day>, the link to the run's directory
	Files        []string // the files published, the manifest among them, sorted
	Entries      int      // journal entries read
	Transactions int      // of them, settled
	// Quarantined settling records were left out; Exceptions is the text
	// report that lists them (written on every run, empty or not).
	Quarantined       int
	QuarantinedAmount iso8583.Amount // gross, in fen
	Exceptions        string
	// Transit taps cleared and records or files rejected (Config.Transit).
	TransitCleared, TransitRejected, TransitBlacklisted int
}

// ErrLocked is returned when another run holds the day's lock.
var ErrLocked = errors.New("another settle run holds this day's lock")

// Run settles cfg.Day.
func Run(cfg Config) (Result, error) {
	res := Result{Dir: filepath.Join(cfg.Out, cfg.Day)}
	if err := CheckDay(cfg.Day); err != nil {
		return res, err
	}
	inputs, err := sealedInputs(cfg.Nodes, cfg.Without, cfg.Day)
	if err != nil {
		return res, err
	}
	l := newLayout(cfg.Out, cfg.Day)
	unlock, err := l.prepare()
	if err != nil {
		return res, err
	}
	defer unlock()
	stage, err := l.stage()
	if err != nil {
		return res, err
	}
	published := false
	defer func() {
		if !published {
			os.RemoveAll(stage)
		}
	}()
	d, err := newDay(cfg, stage, inputs)
	if err != nil {
		return res, err
	}
	defer d.abandon()
	if err := d.read(); err != nil {
		return res, err
	}
	if cfg.Transit != nil {
		if err := d.clearTransit(); err != nil {
			return res, err
		}
	}
	res.Entries, res.Transactions = d.entries, d.txns
	res.TransitCleared, res.TransitRejected, res.TransitBlacklisted = d.transitCleared, d.transitRejected, d.transitBlacklisted
	res.Quarantined, res.QuarantinedAmount = d.exceptions.Count, d.exceptions.Amount
	res.Exceptions = filepath.Join(res.Dir, exceptionsName(cfg.Day)+".txt")
	if res.Files, err = d.commit(); err != nil {
		return res, err
	}
	if err := l.link(filepath.Base(stage)); err != nil {
		return res, err
	}
	published = true
	l.removeStale()
	crashPoint("done")
	return res, nil
}

// read reads every node's sealed file twice: to decide what to
// quarantine, then to settle.
func (d *day) read() error {
	crashPoint("reading")
	for _, pass := range []func(journal.Entry) error{d.survey, d.add} {
		for _, in := range d.inputs {
			node, day, err := journal.ReadSealed(in.path, pass)
			if err != nil {
				return err
			}
			if node != in.node || day != d.cfg.Day {
				return fmt.Errorf("sealed file %s holds node %s day %s, not node %s day %s", in.path, node, day, in.node, d.cfg.Day)
			}
		}
	}
	return nil
}

// day is a run in progress.
type day struct {
	cfg           Config
	dir           string
	inputs        []input
	members       *quarantine.Members
	sorter        *quarantine.Sorter
	exceptions    *quarantine.Report
	net           *netting.Netting
	clearing      map[string]*clearing.Writer // by file ID
	memberInsts   []string                    // every member gets its files (commit)
	outputs       []*output
	perNode       map[string]int
	entries, txns int
	// The transit part (Config.Transit): the tap files read and the
	// ingestion's counts, for the manifest.
	tapFiles                                            []ManifestFile
	transitCleared, transitRejected, transitBlacklisted int
}

func newDay(cfg Config, dir string, inputs []input) (*day, error) {
	d := &day{cfg: cfg, dir: dir, inputs: inputs, clearing: map[string]*clearing.Writer{}, perNode: map[string]int{}}
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
	if err != nil {
		return nil, err
	}
	d.net = net
	for _, m := range members {
		d.memberInsts = append(d.memberInsts, m.Institution)
	}
	return d, nil
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
	d.perNode[e.NodeID]++
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
		w, err := d.output(side.inst, side.role, streamBufferBytes)
		if err == nil {
			err = w.Write(&t, f)
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

// output returns the writer of a member's file in a role, creating it.
func (d *day) output(inst string, role clearing.Role, bufferBytes int) (*clearing.Writer, error) {
	id := clearing.FileID(d.cfg.Day, inst, role)
	if w, ok := d.clearing[id]; ok {
		return w, nil
	}
	o, err := d.create(id+".clr", bufferBytes, false)
	if err != nil {
		return nil, err
	}
	if o.clr, err = clearing.NewWriter(o.buf, clearing.NewHeader(d.cfg.Day, inst, role, d.cfg.SwitchInstitution)); err != nil {
		return nil, err
	}
	d.clearing[id] = o.clr
	return o.clr, nil
}
