// Package testday is a small constructed business day for the settlement
// tests: journal entries as the switch would write them, turned into
// transactions the way cmd/settle will, with the default configs.
package testday

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/settlement"
	"github.com/tapswitch/tapswitch/settlement/fees"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// Day is the business day of the sample, and Switch the network's
// institution (configs/switch.yaml).
const (
	Day    = "20260314"
	Switch = "00010000"
)

// Institutions of the members the sample's goldens are written for.
const (
	ICBC = "01020000" // issuer of most cards in the sample
	CMB  = "03080000" // acquirer of most merchants in the sample
	BJT  = "31000001" // a transit operator
)

// card is a card of the sample: its token, PAN, issuer and product.
type card struct{ token, pan, issuer, product string }

var (
	icbcDebit   = card{"6299900000000000018", "6222020000000001234", "ICBC", "debit"}
	icbcCredit  = card{"6299900000000000026", "6253300000000005678", "ICBC", "credit"}
	bjtTransit  = card{"6299910000000000034", "9910000100000012345", "BJT", "transit"}
	cmbCredit   = card{"6299910000000000042", "6258020000000009999", "CMB", "credit"}
	cmbMerchant = "898310053110001"
)

// at is a time on the sample day, Beijing time.
func at(hh, mm, ss int) time.Time {
	return time.Date(2026, 3, 14, hh, mm, ss, 250_000_000, time.FixedZone("CST", 8*3600)).UTC()
}

type row struct {
	node     string
	seq      uint64
	t        time.Time
	mti, pc  string
	amount   iso8583.Amount
	c        card
	terminal string
	stan     string
	acquirer string
	merchant string
	mcc      string
	rc       string
	standIn  bool
	original string // a reversal's original STAN; its time is looked up
}

// rows is the day. Sorted by node and seq, as the journals return it.
var rows = []row{
	{"node-1", 101, at(9, 15, 2), "0200", "000000", 12345, icbcDebit, "T0000001", "000101", CMB, cmbMerchant, "5411", "00", false, ""},
	{"node-1", 102, at(9, 40, 0), "0200", "200000", 5000, icbcCredit, "T0000001", "000102", CMB, cmbMerchant, "5311", "00", false, ""},
	{"node-1", 103, at(10, 2, 9), "0200", "000000", 200, bjtTransit, "T0000009", "000007", ICBC, "898110041110007", "4111", "00", false, ""},
	{"node-1", 104, at(10, 5, 0), "0200", "000000", 99900, icbcDebit, "T0000001", "000103", CMB, cmbMerchant, "5411", "51", false, ""},
	{"node-1", 105, at(11, 30, 45), "0200", "210000", 10000, icbcDebit, "T0000002", "000201", CMB, "898310041110002", "4111", "00", false, ""},
	{"node-1", 106, at(11, 31, 0), "0100", "310000", 0, icbcDebit, "T0000002", "000202", CMB, "898310041110002", "4111", "00", false, ""},
	{"node-1", 107, at(12, 0, 1), "0200", "000000", 25000, icbcCredit, "T0000003", "000301", CMB, "898310058120003", "5812", "00", true, ""},
	{"node-2", 7, at(14, 20, 0), "0200", "000000", 88800, icbcDebit, "T0000004", "000401", CMB, "898310053990004", "5399", "00", false, ""},
	{"node-2", 8, at(14, 21, 30), "0200", "000000", 5_000_000, cmbCredit, "T0000005", "000501", CMB, "898310054110005", "5411", "00", false, ""},
	{"node-2", 9, at(14, 22, 10), "0400", "000000", 88800, icbcDebit, "T0000004", "000402", CMB, "898310053990004", "5399", "00", false, "000401"},
	{"node-2", 10, at(16, 5, 5), "0200", "000000", 500_000, icbcDebit, "T0000006", "000601", CMB, "898310059990006", "5999", "00", false, ""},
}

// terminalLag is how far the terminals' clocks run behind the switch's in
// the sample, so that a terminal's DE7 and the switch's DE7 towards the
// issuer differ, as they do in the field, and a test notices one taken
// for the other.
const terminalLag = 3 * time.Second

// transmissionTime is DE7 of a request the terminal sent when the switch's
// clock read t.
func transmissionTime(t time.Time) string { return t.Add(-terminalLag).Format("0102150405") }

// issuerTrace is the DE11 and DE7 the switch sent the issuer for row r: its
// own STAN counter (here the journal seq) and clock. A reversal reaches the
// issuer under its original's trace, as switch/authorize journals it.
func issuerTrace(r row) (stan, de7 string) {
	if r.original != "" {
		for _, o := range rows {
			if o.terminal == r.terminal && o.stan == r.original {
				r = o
				break
			}
		}
	}
	return fmt.Sprintf("%06d", r.seq), r.t.UTC().Format("0102150405")
}

// Entries returns the sample's journal entries, settling or not.
func Entries() []journal.Entry {
	out := make([]journal.Entry, 0, len(rows))
	for _, r := range rows {
		e := journal.Entry{
			Seq: r.seq, BusinessDay: Day, Time: r.t, NodeID: r.node, MTI: r.mti,
			ProcessingCode: r.pc, Amount: r.amount, Currency: iso8583.CurrencyCNY,
			TerminalID: r.terminal, STAN: r.stan, TransmissionTime: transmissionTime(r.t),
			RRN: "6073" + r.stan + r.terminal[6:], MerchantID: r.merchant, MCC: r.mcc,
			Acquirer: r.acquirer, Token: r.c.token, PANSealed: []byte("sealed:" + r.c.token),
			IssuerID: r.c.issuer, Product: r.c.product, ResponseCode: r.rc, StandIn: r.standIn,
		}
		e.IssuerSTAN, e.IssuerTransmissionTime = issuerTrace(r)
		if r.original != "" {
			o := originalKey(r.terminal, r.original)
			e.OriginalSTAN, e.OriginalTransmissionTime = o.STAN, o.TransmissionTime
		}
		if r.rc == "00" {
			e.AuthCode = fmt.Sprintf("%s%04d", r.node[len(r.node)-1:]+"A", r.seq)
		}
		out = append(out, e)
	}
	return out
}

// Txns returns the settling transactions of the sample, converted with
// settlement.FromEntry as cmd/settle will: the PAN from the (simulated)
// vault, the issuer's institution from configs/issuers.yaml, a reversal's
// original from its DE90.
func Txns() []settlement.Txn {
	inst := Institutions()
	pans := map[string]iso8583.PAN{}
	for _, c := range []card{icbcDebit, icbcCredit, bjtTransit, cmbCredit} {
		pans[c.token] = iso8583.PAN(c.pan)
	}
	var out []settlement.Txn
	for i, e := range Entries() {
		if !settlement.Settles(&e) {
			continue
		}
		s := settlement.Supplied{PAN: pans[e.Token], IssuerInstitution: inst[e.IssuerID]}
		if o := rows[i].original; o != "" {
			s.Original = originalKey(e.TerminalID, o)
		}
		t, err := settlement.FromEntry(&e, s)
		if err != nil {
			panic(err)
		}
		out = append(out, t)
	}
	return out
}

func originalKey(terminal, stan string) journal.Key {
	for _, r := range rows {
		if r.terminal == terminal && r.stan == stan {
			return journal.Key{TerminalID: terminal, STAN: stan, TransmissionTime: transmissionTime(r.t)}
		}
	}
	panic("testday: no original " + stan)
}

// Members returns the members of configs/issuers.yaml.
func Members() []issuers.Issuer {
	list, err := issuers.Parse(configs.Issuers)
	if err != nil {
		panic(err)
	}
	return list
}

// Institutions maps issuer IDs to institution IDs.
func Institutions() map[string]string {
	m := map[string]string{}
	for _, is := range Members() {
		m[is.ID] = is.Institution
	}
	return m
}

// Schedule returns the fee schedule of configs/fees.yaml.
func Schedule() *fees.Schedule {
	s, err := fees.Parse(configs.Fees)
	if err != nil {
		panic(err)
	}
	return s
}

// PAN returns the card number behind a token of the sample.
func PAN(token string) (string, bool) {
	for _, c := range []card{icbcDebit, icbcCredit, bjtTransit, cmbCredit} {
		if c.token == token {
			return c.pan, true
		}
	}
	return "", false
}

// Sealed is a day journaled and sealed the way the switch nodes do it.
type Sealed struct {
	KeyFile    string         // the vault key file that sealed the PANs
	Keys       *vault.Keyring // loaded from KeyFile
	SealedDirs []string       // one per node, in node order
	Nodes      []string       // the node IDs, in the same order
	Day        string
}

// Seal journals entries through a real journal per node under dir (Append
// assigns Seq and business day, as on a switch node; the entries' Seq is
// ignored), sealing each PAN (by the sample's card table) with a new
// keyring, and seals the day for each node. Entries of one node are
// appended in the order given.
func Seal(dir string, entries []journal.Entry) (Sealed, error) {
	s := Sealed{KeyFile: filepath.Join(dir, "vault.keys")}
	if err := vault.GenerateKeyringFile(s.KeyFile); err != nil {
		return s, err
	}
	keys, err := vault.LoadKeyringFile(s.KeyFile)
	if err != nil {
		return s, err
	}
	s.Keys = keys
	byNode := map[string][]journal.Entry{}
	var nodes []string
	for _, e := range entries {
		if _, ok := byNode[e.NodeID]; !ok {
			nodes = append(nodes, e.NodeID)
		}
		byNode[e.NodeID] = append(byNode[e.NodeID], e)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		sealed, day, err := sealNode(filepath.Join(dir, n), n, keys, byNode[n])
		if err != nil {
			return s, fmt.Errorf("testday: node %s: %w", n, err)
		}
		s.SealedDirs, s.Day = append(s.SealedDirs, sealed), day
		s.Nodes = append(s.Nodes, n)
	}
	return s, nil
}

func sealNode(dir, node string, keys *vault.Keyring, entries []journal.Entry) (string, string, error) {
	j, err := journal.Open(filepath.Join(dir, "journal"), journal.Options{})
	if err != nil {
		return "", "", err
	}
	defer j.Close()
	day := ""
	for _, e := range entries {
		pan, ok := PAN(e.Token)
		if !ok {
			return "", "", fmt.Errorf("no card behind token %s", iso8583.MaskPAN(e.Token))
		}
		e.PANSealed = keys.Seal([]byte(pan), []byte("journal:"+e.Token))
		if err := j.Append(&e); err != nil {
			return "", "", err
		}
		day = e.BusinessDay
	}
	sealed := filepath.Join(dir, "sealed")
	if err := os.MkdirAll(sealed, 0o700); err != nil {
		return "", "", err
	}
	_, err = j.SealDay(day, node, sealed)
	return sealed, day, err
}
