package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/settlement/clearing"
	"github.com/tapswitch/tapswitch/settlement/settleday"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/node"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// The tests of this file make node data directories the way switch nodes
// make them (a real journal per node, sealed with journal.SealDay) and run
// settle over them; issue 10's defects, each through real files.

// sampleDay is the business day of the fixtures: 12:00 Beijing time on
// 2026-03-14 is day 20260314 under the default 23:00 Asia/Shanghai cut-off.
var sampleNoon = time.Date(2026, 3, 14, 4, 0, 0, 0, time.UTC)

const sampleDay, sampleDate = "20260314", "2026-03-14"

type sealedWorld struct {
	dir        string
	keys       *vault.Keyring
	settleKeys string
}

func newSealedWorld(t *testing.T) *sealedWorld {
	t.Helper()
	w := &sealedWorld{dir: t.TempDir()}
	switchKeys := filepath.Join(w.dir, "switch.keys")
	w.settleKeys = filepath.Join(w.dir, "settle.keys")
	if err := vault.GenerateKeyringFile(switchKeys); err != nil {
		t.Fatal(err)
	}
	if err := vault.WriteDataKeysFile(switchKeys, w.settleKeys); err != nil {
		t.Fatal(err)
	}
	keys, err := vault.LoadKeyringFile(switchKeys)
	if err != nil {
		t.Fatal(err)
	}
	w.keys = keys
	return w
}

// node journals purchases on node id (ICBC cards, acquired by CMB, or by
// acquirers[i] when given), one a minute from at, and seals each of days
// (empty or not). It returns the node's data directory.
func (w *sealedWorld) node(t *testing.T, id string, purchases int, at time.Time, days []string, acquirers ...string) string {
	t.Helper()
	data := filepath.Join(w.dir, id)
	j, err := journal.Open(filepath.Join(data, "journal"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for i := range purchases {
		acq := "03080000"
		if i < len(acquirers) {
			acq = acquirers[i]
		}
		e := fixtureEntry(id, i, at.Add(time.Duration(i)*time.Minute), acq)
		e.PANSealed = w.keys.Seal([]byte("6222020000000001234"), []byte("journal:"+e.Token))
		if err := j.Append(&e); err != nil {
			t.Fatal(err)
		}
	}
	sealed := node.SealedDir(data)
	os.MkdirAll(sealed, 0o700)
	for _, day := range days {
		if _, err := j.SealDay(day, id, sealed); err != nil {
			t.Fatal(err)
		}
	}
	return data
}

func fixtureEntry(nodeID string, i int, at time.Time, acquirer string) journal.Entry {
	stan := fmt.Sprintf("%06d", i+1)
	return journal.Entry{
		Time: at, NodeID: nodeID, MTI: "0200", ProcessingCode: iso8583.ProcPurchase,
		Amount: iso8583.Amount(100_00 + i), Currency: iso8583.CurrencyCNY, TerminalID: "T" + fmt.Sprintf("%07d", len(nodeID)),
		STAN: stan, TransmissionTime: at.Format("0102150405"), RRN: "607300" + stan, MerchantID: "898310054110001",
		MCC: "5411", Acquirer: acquirer, Token: "6299900000000000018", IssuerID: "ICBC", Product: "debit",
		IssuerSTAN: stan, IssuerTransmissionTime: at.Format("0102150405"), ResponseCode: "00", AuthCode: "123456",
		CardExpiry: "2912",
	}
}

func (w *sealedWorld) args(out string, more ...string) []string {
	return append([]string{"-keys", w.settleKeys, "-out", out, "-quiet"}, more...)
}

func runSettle(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := run(args, sampleNoon.Add(48*time.Hour), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// published reads the day the consumer's way: the manifest first, then
// every file it lists (checked against its SHA-256); and it fails the test
// if the day's directory holds anything the manifest does not list.
func published(t *testing.T, out, day string) (settleday.Manifest, map[string][]byte) {
	t.Helper()
	m, dir, err := settleday.ReadManifest(out, day)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, f := range m.Files {
		files[f.Name], _ = os.ReadFile(filepath.Join(dir, f.Name))
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if _, ok := files[e.Name()]; !ok && e.Name() != settleday.ManifestName(day) {
			t.Errorf("%s is in the day's directory but not in its manifest", e.Name())
		}
	}
	return m, files
}

// TestNodeMissingTheDayRefused (defect 1): a node with no sealed file for
// the day but one for a later day is not "a node without traffic": settle
// exits 1 naming the node and the day, publishes nothing, and settles
// without the node only when told to by name, which the manifest records.
func TestNodeMissingTheDayRefused(t *testing.T) {
	w := newSealedWorld(t)
	next := journal.NextDay(sampleDay)
	n1 := w.node(t, "node-1", 3, sampleNoon, []string{sampleDay, next})
	n2 := w.node(t, "node-2", 2, sampleNoon, []string{sampleDay, next})
	os.Remove(filepath.Join(node.SealedDir(n2), journal.SealedFileName("node-2", sampleDay)))
	out := t.TempDir()
	code, _, stderr := runSettle(w.args(out, "-date", sampleDate, "-journals", n1+","+n2)...)
	if code != 1 || !strings.Contains(stderr, "node node-2 has no sealed file of day "+sampleDay) || !strings.Contains(stderr, "-without node-2") {
		t.Fatalf("node-2's day missing: exit %d, %q; want 1 naming node-2, the day and -without", code, stderr)
	}
	if _, err := os.Lstat(filepath.Join(out, sampleDay)); err == nil {
		t.Fatal("a refused run published the day")
	}
	code, _, stderr = runSettle(w.args(out, "-date", sampleDate, "-journals", n1+","+n2, "-without", "node-2")...)
	if code != 0 {
		t.Fatalf("-without node-2: exit %d, %s", code, stderr)
	}
	m, _ := published(t, out, sampleDay)
	if !slices.Equal(m.NodesLeftOut, []string{"node-2"}) || len(m.Nodes) != 1 || m.Nodes[0].Node != "node-1" || m.Entries != 3 {
		t.Fatalf("manifest nodes %+v left out %v entries %d; want node-1 read (3 entries), node-2 left out", m.Nodes, m.NodesLeftOut, m.Entries)
	}
}

// TestEveryMemberGetsItsFiles: every member of the network has an issuer
// and an acquirer file every day, with zero records when it had no
// traffic, each listed in the manifest with its SHA-256; a day on which no
// node journaled anything settles, loudly.
func TestEveryMemberGetsItsFiles(t *testing.T) {
	w := newSealedWorld(t)
	data := w.node(t, "node-1", 0, sampleNoon, []string{sampleDay})
	out := t.TempDir()
	code, _, stderr := runSettle(w.args(out, "-date", sampleDate, "-journals", data)...)
	if code != 0 || !strings.Contains(stderr, "no node journaled a single entry") {
		t.Fatalf("an empty day: exit %d, %q; want 0 and a warning", code, stderr)
	}
	_, files := published(t, out, sampleDay)
	cfg, _ := node.LoadConfig("")
	list, _, _ := cfg.Network()
	for _, is := range list {
		for _, role := range []clearing.Role{clearing.Issuer, clearing.Acquirer} {
			name := clearing.FileID(sampleDay, is.Institution, role) + ".clr"
			f, err := clearing.Read(bytes.NewReader(files[name]))
			if err != nil || len(f.Details) != 0 {
				t.Errorf("%s of %s: %v, %d records; want an empty file", name, is.ID, err, len(f.Details))
			}
		}
	}
	if want := 2*len(list) + 4; len(files) != want {
		t.Errorf("%d files, want %d (two per member, net and exceptions reports)", len(files), want)
	}
}

// TestReRunReplacesTheWholeDay (defect 4): a day settled again with fewer
// members (one removed from the issuers file) keeps nothing of the first
// run: the removed member's files are gone, and the directory holds
// exactly what its manifest lists.
func TestReRunReplacesTheWholeDay(t *testing.T) {
	w := newSealedWorld(t)
	data := w.node(t, "node-1", 3, sampleNoon, []string{sampleDay}, "09990000")
	issuersFile := filepath.Join(w.dir, "issuers.yaml")
	os.WriteFile(issuersFile, append(bytes.Clone(configs.Issuers), `  - id: TESTBANK
    name: A bank since removed
    kind: bank
    institution: "09990000"
    address: 127.0.0.1:9699
`...), 0o600)
	cfgFile := filepath.Join(w.dir, "switch.yaml")
	os.WriteFile(cfgFile, bytes.Replace(configs.Switch, []byte(`issuers_file: ""`), []byte("issuers_file: "+issuersFile), 1), 0o600)
	out := t.TempDir()
	if code, _, stderr := runSettle(w.args(out, "-date", sampleDate, "-journals", data, "-config", cfgFile)...); code != 0 {
		t.Fatalf("first run: exit %d, %s", code, stderr)
	}
	stale := sampleDay + "-09990000-ACQ.clr"
	if _, files := published(t, out, sampleDay); files[stale] == nil {
		t.Fatalf("the first run wrote no %s", stale)
	}
	if code, _, stderr := runSettle(w.args(out, "-date", sampleDate, "-journals", data)...); code != exitExceptions {
		t.Fatalf("re-run without the member: exit %d, %s; want %d", code, stderr, exitExceptions)
	}
	if _, err := os.Stat(filepath.Join(out, sampleDay, stale)); err == nil {
		t.Fatalf("%s of the first run survived the re-run", stale)
	}
	published(t, out, sampleDay)
}

// TestNodeIDsThatPrefixEachOther (defect 5): nodes node-1 and node-1-2
// settle together, in node-ID order (node-1 first), though node-1-2's file
// name sorts first.
func TestNodeIDsThatPrefixEachOther(t *testing.T) {
	w := newSealedWorld(t)
	a := w.node(t, "node-1", 2, sampleNoon, []string{sampleDay})
	b := w.node(t, "node-1-2", 2, sampleNoon, []string{sampleDay})
	out := t.TempDir()
	if code, _, stderr := runSettle(w.args(out, "-date", sampleDate, "-journals", b+","+a)...); code != 0 {
		t.Fatalf("node-1 with node-1-2: exit %d, %s", code, stderr)
	}
	_, files := published(t, out, sampleDay)
	f, err := clearing.Read(bytes.NewReader(files[clearing.FileID(sampleDay, "01020000", clearing.Issuer)+".clr"]))
	if err != nil || len(f.Details) != 4 || f.Details[0].NodeID != "node-1" || f.Details[3].NodeID != "node-1-2" {
		t.Fatalf("ICBC's file: %v %+v; want node-1's two records, then node-1-2's", err, f.Details)
	}
}

// TestMisleadingInputsNamed (defect 6): a -journals directory that does
// not exist, one named twice, and dates no node can have sealed each get
// a message saying so, not "not sealed yet", "not sorted" or an empty day.
func TestMisleadingInputsNamed(t *testing.T) {
	w := newSealedWorld(t)
	data := w.node(t, "node-1", 1, sampleNoon, []string{sampleDay})
	out := t.TempDir()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no such directory", []string{"-date", sampleDate, "-journals", filepath.Join(w.dir, "nosuch")}, "no such file or directory"},
		{"one directory twice", []string{"-date", sampleDate, "-journals", data + "," + data + "/"}, "names " + data + "/ twice"},
		{"year 0", []string{"-date", "0000-01-01", "-journals", data}, "before 20000101"},
		{"1999", []string{"-date", "1999-01-01", "-journals", data}, "before 20000101"},
		{"before the node's first day", []string{"-date", "2026-03-01", "-journals", data}, "before its first sealed day " + sampleDay},
		{"not sealed yet", []string{"-date", "2026-03-15", "-journals", data}, "node node-1 has not sealed day 20260315 yet"},
	} {
		code, _, stderr := runSettle(w.args(out, c.args...)...)
		if code != 1 || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%s: exit %d, %q; want 1 and one line saying %q", c.name, code, stderr, c.want)
		}
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 && !(len(ents) == 1 && ents[0].Name() == ".settle") {
		t.Errorf("refused runs published %v", ents)
	}
}

// TestNoDateTakesTheNodesCutoff: without -date settle takes the last day
// closed by the cut-off the nodes recorded, not the built-in one: at 07:00
// UTC on the 14th, with the nodes' cut-off at 06:00 UTC, that is the 14th
// (by the built-in 23:00 Asia/Shanghai it would be the 13th).
func TestNoDateTakesTheNodesCutoff(t *testing.T) {
	w := newSealedWorld(t)
	data := w.node(t, "node-1", 2, sampleNoon, []string{sampleDay})
	os.WriteFile(filepath.Join(node.SealedDir(data), node.CutoffFileName), []byte("06:00 UTC\n"), 0o600)
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	at := time.Date(2026, 3, 14, 7, 0, 0, 0, time.UTC)
	if code := run([]string{"-journals", data, "-keys", w.settleKeys, "-out", out}, at, &stdout, &stderr); code != 0 ||
		!strings.HasPrefix(stdout.String(), "settled "+sampleDay+": 2 entries") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want day %s settled with its 2 entries", code, stdout.String(), stderr.String(), sampleDay)
	}
}

// TestManifestListsTheRun: the manifest names the nodes read with their
// entries, and every file with its size and SHA-256; the consumer's reader
// refuses a file changed after publication.
func TestManifestListsTheRun(t *testing.T) {
	w := newSealedWorld(t)
	a := w.node(t, "node-a", 2, sampleNoon, []string{sampleDay})
	b := w.node(t, "node-b", 3, sampleNoon, []string{sampleDay})
	out := t.TempDir()
	if code, _, stderr := runSettle(w.args(out, "-date", sampleDate, "-journals", a+","+b)...); code != 0 {
		t.Fatalf("exit %d, %s", code, stderr)
	}
	m, files := published(t, out, sampleDay)
	raw, _ := json.Marshal(m.Nodes)
	if string(raw) != `[{"node":"node-a","sealed_file":"node-a-20260314.sealed","entries":2},{"node":"node-b","sealed_file":"node-b-20260314.sealed","entries":3}]` ||
		len(m.NodesLeftOut) != 0 || m.Transactions != 5 || len(m.Files) != len(files) {
		t.Fatalf("manifest %+v", m)
	}
	net := filepath.Join(out, sampleDay, "net-"+sampleDay+".txt")
	os.WriteFile(net, append(files["net-"+sampleDay+".txt"], ' '), 0o640)
	if _, _, err := settleday.ReadManifest(out, sampleDay); err == nil || !strings.Contains(err.Error(), "does not match the manifest") {
		t.Fatalf("a changed file: %v, want a mismatch", err)
	}
}
