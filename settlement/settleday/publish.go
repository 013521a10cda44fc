package settleday

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/tapswitch/tapswitch/internal/durable"
	"github.com/tapswitch/tapswitch/settlement/clearing"
)

// A day's output is published whole: every file is written into a run
// directory of its own, synced, listed with its SHA-256 in the manifest
// (written and synced last), and then made visible in one atomic step,
// rename(2) of a new symlink over OUT/<day>:
//
//	OUT/<day>                      -> .settle/<day>/run-XXXX   (symlink)
//	OUT/.settle/<day>/.lock        flock: one run per day at a time
//	OUT/.settle/<day>/run-XXXX/    the files of one run and its manifest
//
// A crash before the rename leaves the previous run visible; after it, the
// new one. The previous run's directory is removed once the new one is
// visible, and whatever a crashed run left (its run directory, the
// temporary link) is removed by the next run. A directory cannot be
// renamed over a non-empty one atomically on Linux; a symlink can be.

const (
	stateDirName  = ".settle"
	runPrefix     = "run-"
	linkTemporary = "link.tmp"
	// ManifestFormat is the manifest's format field.
	ManifestFormat = "tapswitch-settlement-day/1"
)

// ManifestName is the manifest's file name in a day's directory.
func ManifestName(day string) string { return "manifest-" + day + ".json" }

// Manifest lists a published day: the nodes whose sealed days it read,
// the nodes an operator left out, and every file with its SHA-256.
type Manifest struct {
	Format            string         `json:"format"`
	Day               string         `json:"day"`
	SwitchInstitution string         `json:"switch_institution"`
	Nodes             []ManifestNode `json:"nodes"`
	NodesLeftOut      []string       `json:"nodes_left_out"`
	Entries           int            `json:"entries"`
	Transactions      int            `json:"transactions"`
	Quarantined       int            `json:"quarantined"`
	// Transit is set on a day cleared with tap files (settle -taps).
	Transit *ManifestTransit `json:"transit,omitempty"`
	Files   []ManifestFile   `json:"files"`
}

// ManifestTransit is the transit part of a day: the tap files read (name,
// size and SHA-256 of what was read, so a file changed after the run is
// seen) and the ingestion's counts.
type ManifestTransit struct {
	TapFiles    []ManifestFile `json:"tap_files"`
	Cleared     int            `json:"cleared"`
	Rejected    int            `json:"rejected"`
	Blacklisted int            `json:"blacklisted"`
}

// ManifestNode is one node's sealed file of the day.
type ManifestNode struct {
	Node       string `json:"node"`
	SealedFile string `json:"sealed_file"`
	Entries    int    `json:"entries"`
}

// ManifestFile is one published file.
type ManifestFile struct {
	Name   string `json:"name"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// layout is where a day's output lives under Out.
type layout struct{ out, day, state string }

func newLayout(out, day string) layout {
	return layout{out: out, day: day, state: filepath.Join(out, stateDirName, day)}
}

// visible is OUT/<day>, the link consumers read through.
func (l layout) visible() string { return filepath.Join(l.out, l.day) }

// prepare takes the day's lock, adopts a directory an older settle left
// under OUT/<day>, and removes what crashed runs left.
func (l layout) prepare() (func(), error) {
	if err := os.MkdirAll(l.state, 0o750); err != nil {
		return nil, err
	}
	unlock, err := lockDay(l.state)
	if err != nil {
		return nil, err
	}
	if err := l.adoptLegacy(); err != nil {
		unlock()
		return nil, err
	}
	l.removeStale()
	return unlock, nil
}

// current is the run directory OUT/<day> points at, "" if none.
func (l layout) current() string {
	target, err := os.Readlink(l.visible())
	if err != nil {
		return ""
	}
	return filepath.Base(target)
}

// adoptLegacy turns a plain OUT/<day> directory (settle before the
// manifest) into a run directory and links it, so that from then on the
// day is switched by the link. A crash between the two steps leaves no
// day visible until the next run; it happens once per day ever.
func (l layout) adoptLegacy() error {
	fi, err := os.Lstat(l.visible())
	if errors.Is(err, fs.ErrNotExist) || (err == nil && fi.Mode()&fs.ModeSymlink != 0) {
		return nil
	}
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is neither a directory nor the day's link", l.visible())
	}
	legacy := filepath.Join(l.state, runPrefix+"legacy")
	if err := os.RemoveAll(legacy); err != nil {
		return err
	}
	if err := os.Rename(l.visible(), legacy); err != nil {
		return err
	}
	return l.link(filepath.Base(legacy))
}

// removeStale removes every run directory but the visible one, and a
// temporary link.
func (l layout) removeStale() {
	keep := l.current()
	os.Remove(filepath.Join(l.state, linkTemporary))
	runs, _ := filepath.Glob(filepath.Join(l.state, runPrefix+"*"))
	for _, r := range runs {
		if filepath.Base(r) != keep {
			removeRun(r)
		}
	}
}

// removeRun removes a run directory file by file (a crash point sits
// between the files, so the test sees a half-removed old run).
func removeRun(dir string) {
	names, _ := os.ReadDir(dir)
	for i, n := range names {
		os.Remove(filepath.Join(dir, n.Name()))
		if i == 0 {
			crashPoint("pruning")
		}
	}
	os.Remove(dir)
}

// stage makes a new run directory.
func (l layout) stage() (string, error) {
	dir, err := os.MkdirTemp(l.state, runPrefix)
	if err != nil {
		return "", err
	}
	return dir, os.Chmod(dir, 0o750)
}

// link makes OUT/<day> point at run: a new symlink renamed over the old
// one (rename(2) is atomic), then the directory synced.
func (l layout) link(run string) error {
	tmp := filepath.Join(l.state, linkTemporary)
	os.Remove(tmp)
	if err := os.Symlink(filepath.Join(stateDirName, l.day, run), tmp); err != nil {
		return err
	}
	crashPoint("linked")
	if err := os.Rename(tmp, l.visible()); err != nil {
		return err
	}
	crashPoint("swapped")
	return durable.SyncDir(l.out)
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

// output is one file being written in the run directory. A clearing
// file's SHA-256 comes from its writer (clr), which hashes it anyway for
// the trailer's digest; any other file is hashed as it is written (sum).
type output struct {
	name string
	f    *os.File
	buf  *bufio.Writer
	sum  hash.Hash
	clr  *clearing.Writer
}

// Buffer sizes: a file written record by record during the pass, and one
// written at once (a report, the empty file of a member without traffic).
const (
	streamBufferBytes = 256 << 10
	wholeBufferBytes  = 4 << 10
)

func (d *day) create(name string, bufferBytes int, hashed bool) (*output, error) {
	f, err := os.OpenFile(filepath.Join(d.dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, err
	}
	o := &output{name: name, f: f}
	var w io.Writer = f
	if hashed {
		o.sum = sha256.New()
		w = io.MultiWriter(f, o.sum)
	}
	o.buf = bufio.NewWriterSize(w, bufferBytes)
	d.outputs = append(d.outputs, o)
	return o, nil
}

// finish flushes, syncs and closes the file and returns its manifest line.
func (o *output) finish() (ManifestFile, error) {
	err := o.buf.Flush()
	if err == nil {
		err = o.f.Sync()
	}
	var st fs.FileInfo
	if err == nil {
		st, err = o.f.Stat()
	}
	if cerr := o.f.Close(); err == nil {
		err = cerr
	}
	o.f = nil
	if err != nil {
		return ManifestFile{}, err
	}
	var sum []byte
	if o.clr != nil {
		s := o.clr.FileSHA256()
		sum = s[:]
	} else {
		sum = o.sum.Sum(nil)
	}
	return ManifestFile{Name: o.name, Bytes: st.Size(), SHA256: hex.EncodeToString(sum)}, nil
}

// commit closes every clearing file, writes the net and exceptions
// reports, syncs them, and writes the manifest last. Nothing is visible
// until Run links the directory.
func (d *day) commit() ([]string, error) {
	// Every member's file in each role, traffic or not: those without any
	// are made now, with a small buffer.
	for _, inst := range d.memberInsts {
		for _, role := range []clearing.Role{clearing.Issuer, clearing.Acquirer} {
			if _, err := d.output(inst, role, wholeBufferBytes); err != nil {
				return nil, err
			}
		}
	}
	for _, o := range d.outputs {
		if o.clr == nil {
			continue
		}
		if _, err := o.clr.Close(); err != nil {
			return nil, err
		}
	}
	report := d.net.Report()
	for name, data := range map[string][]byte{
		"net-" + d.cfg.Day + ".txt":         report.Text(),
		"net-" + d.cfg.Day + ".json":        report.JSON(),
		exceptionsName(d.cfg.Day) + ".txt":  d.exceptions.Text(),
		exceptionsName(d.cfg.Day) + ".json": d.exceptions.JSON(),
	} {
		o, err := d.create(name, wholeBufferBytes, true)
		if err != nil {
			return nil, err
		}
		o.buf.Write(data)
	}
	crashPoint("written")
	m := d.manifest()
	for _, o := range d.outputs {
		line, err := o.finish()
		if err != nil {
			return nil, err
		}
		m.Files = append(m.Files, line)
	}
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Name < m.Files[j].Name })
	crashPoint("synced")
	if err := d.writeManifest(m); err != nil {
		return nil, err
	}
	crashPoint("manifest")
	names := []string{ManifestName(d.cfg.Day)}
	for _, f := range m.Files {
		names = append(names, f.Name)
	}
	sort.Strings(names)
	return names, durable.SyncDir(d.dir)
}

func (d *day) manifest() Manifest {
	m := Manifest{Format: ManifestFormat, Day: d.cfg.Day, SwitchInstitution: d.cfg.SwitchInstitution,
		NodesLeftOut: append([]string{}, d.cfg.Without...), Entries: d.entries, Transactions: d.txns,
		Quarantined: d.exceptions.Count}
	sort.Strings(m.NodesLeftOut)
	if d.cfg.Transit != nil {
		m.Transit = &ManifestTransit{TapFiles: append([]ManifestFile{}, d.tapFiles...), Cleared: d.transitCleared,
			Rejected: d.transitRejected, Blacklisted: d.transitBlacklisted}
	}
	for _, in := range d.inputs {
		m.Nodes = append(m.Nodes, ManifestNode{Node: in.node, SealedFile: filepath.Base(in.path), Entries: d.perNode[in.node]})
	}
	return m
}

func (d *day) writeManifest(m Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	o, err := d.create(ManifestName(d.cfg.Day), wholeBufferBytes, true)
	if err != nil {
		return err
	}
	o.buf.Write(append(data, '\n'))
	_, err = o.finish()
	return err
}

// abandon closes what a failed run left open; Run removes its directory.
func (d *day) abandon() {
	for _, o := range d.outputs {
		if o.f != nil {
			o.f.Close()
		}
	}
}

// ReadManifest reads the manifest of a published day through OUT/<day>
// and checks every file it lists against its size and SHA-256, as a
// consumer does: the directory the link points at is resolved once, so a
// run published meanwhile cannot mix in. It returns that directory.
func ReadManifest(out, day string) (Manifest, string, error) {
	dir, err := filepath.EvalSymlinks(filepath.Join(out, day))
	if err != nil {
		return Manifest{}, "", err
	}
	var m Manifest
	data, err := os.ReadFile(filepath.Join(dir, ManifestName(day)))
	if err == nil {
		err = json.Unmarshal(data, &m)
	}
	if err == nil && (m.Format != ManifestFormat || m.Day != day) {
		err = fmt.Errorf("format %q day %q", m.Format, m.Day)
	}
	if err != nil {
		return m, dir, fmt.Errorf("manifest of %s: %w", day, err)
	}
	for _, f := range m.Files {
		if strings.ContainsAny(f.Name, `/\`) {
			return m, dir, fmt.Errorf("manifest of %s lists %q", day, f.Name)
		}
		data, err := os.ReadFile(filepath.Join(dir, f.Name))
		if err != nil {
			return m, dir, err
		}
		if sum := sha256.Sum256(data); int64(len(data)) != f.Bytes || hex.EncodeToString(sum[:]) != f.SHA256 {
			return m, dir, fmt.Errorf("%s does not match the manifest of %s", f.Name, day)
		}
	}
	return m, dir, nil
}
