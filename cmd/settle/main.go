// Command settle settles a business day from the switch nodes' sealed
// journals: clearing files per member and role, and the net-settlement
// report. `settle reconcile` compares each issuer's own ledger with its
// clearing file and lists every break. It is meant for cron: quiet with -quiet, a one-line reason and a
// non-zero exit on failure. See configs/cron/.
//
// Exit status: 0 every settling record settled; 3 settled with exceptions:
// records that could not be settled (settlement/quarantine) were left out
// and listed in OUT/<day>/exceptions-<day>.txt, every file was written, and
// one line on stderr says how many and how much, even with -quiet; 1 failed,
// no file written or replaced; 2 bad usage.
//
//	settle -config /etc/tapswitch/switch.yaml \
//	       -keys /etc/tapswitch/settle.keys -out /var/lib/tapswitch/clearing
//
// The nodes are the configuration's nodes: list (or, without one, the
// node itself): every one must have sealed the day, or settle refuses,
// naming the node and the day; -without NODE settles without one, and the
// manifest records it. -journals DIRS replaces the list for a one-off run,
// each node's ID read from its sealed files. Without -date settle takes
// the last day closed by the cut-off the nodes recorded in their sealed
// directories. The day is published whole as OUT/<day>, a link to the
// run's directory, with manifest-<day>.json listing every file and its
// SHA-256 (docs/clearing-format.md, "Publication").
//
// With -taps DIR and -operator-keys FILE settle also clears the transit
// day: the tap files the operators uploaded to DIR/YYYYMMDD/, checked
// against the operators' master keys and the purse loads of the journals;
// the fares between operators go into the same net settlement, and each
// operator gets a transit clearing file and a rejections report, beside
// the day's blacklist (docs/transit.md, "Inter-city clearing").
//
// The key file holds the vault's data keys only (v1:, v2: ... lines): settle
// opens the journal's sealed PANs and needs nothing else. A file holding
// the switch's index key or token master is refused (docs/keys.md).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tapswitch/tapswitch/configs"
	"github.com/tapswitch/tapswitch/internal/cli"
	"github.com/tapswitch/tapswitch/settlement/fees"
	"github.com/tapswitch/tapswitch/settlement/quarantine"
	"github.com/tapswitch/tapswitch/settlement/settleday"
	"github.com/tapswitch/tapswitch/settlement/transit"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/node"
	"github.com/tapswitch/tapswitch/switch/vault"
)

func main() {
	os.Exit(run(os.Args[1:], time.Now(), os.Stdout, os.Stderr))
}

type options struct {
	date, journals, without, keys, keyEnv, out, config, feesFile string
	taps, operatorKeys                                           string
	quiet                                                        bool
}

// exitExceptions is the exit status of a run that settled the day but
// quarantined records: the files are complete and valid, and someone must
// look at the exceptions report.
const exitExceptions = 3

// run is settle without the process: exit 0 done, 1 failed, 2 bad usage,
// exitExceptions done with records quarantined.
func run(args []string, now time.Time, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "reconcile" {
		return runReconcile(args[1:], now, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "help" {
		args = []string{"-h"}
	}
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "settle: unknown command %q: the only one is reconcile (settle -h)\n", args[0])
		return cli.ExitUsage
	}
	var o options
	fs := cli.New("settle", exitHelp, stdout, stderr)
	fs.AlsoUsage("settle reconcile [flags]   (settle reconcile -h)")
	fs.StringVar(&o.date, "date", "", "business `day` YYYY-MM-DD (default: the last day closed by the nodes' recorded cut-off)")
	fs.StringVar(&o.journals, "journals", "", "comma-separated switch node data `DIRS` (each has sealed/), instead of the config's nodes: list")
	fs.StringVar(&o.without, "without", "", "comma-separated node `IDS` to settle without (a node lost; recorded in the manifest)")
	fs.StringVar(&o.keys, "keys", "", "data key `FILE`: the vault's data keys only, no index or token-master line (opens the sealed PANs for issuer files)")
	fs.StringVar(&o.keyEnv, "key-env", "", "environment `VARIABLE` holding the data keys instead of -keys")
	fs.StringVar(&o.out, "out", "", "output `DIR`; files go to DIR/YYYYMMDD/")
	fs.StringVar(&o.config, "config", "", "switch configuration `FILE`: institution, members and the nodes: list (default: built in, this node alone)")
	fs.StringVar(&o.feesFile, "fees", "", "fee schedule `FILE` (default: the built-in configs/fees.yaml)")
	fs.StringVar(&o.taps, "taps", "", "uploaded tap files `DIR`: clears DIR/YYYYMMDD/*.taps of the day between the transit operators, in the same net settlement (needs -operator-keys)")
	fs.StringVar(&o.operatorKeys, "operator-keys", "", "the transit operators' master key `FILE` (tapctl keys init-operators), to verify the taps' TACs (with -taps)")
	fs.BoolVar(&o.quiet, "quiet", false, "print nothing on success")
	if err := fs.Parse(args); err != nil {
		return parseFailed(fs, err, stderr)
	}
	if fs.NArg() > 0 || o.out == "" || (o.keys == "") == (o.keyEnv == "") {
		fmt.Fprintln(stderr, "settle: need -out and one of -keys or -key-env (settle -h)")
		return 2
	}
	if (o.taps == "") != (o.operatorKeys == "") {
		fmt.Fprintln(stderr, "settle: -taps and -operator-keys go together: the taps' TACs are verified under the operators' master keys (settle -h)")
		return 2
	}
	res, err := settle(o, now)
	if err != nil {
		fmt.Fprintf(stderr, "settle: %v\n", oneLine(err))
		return 1
	}
	if !o.quiet {
		fmt.Fprintf(stdout, "settled %s: %d entries, %d settling transactions, %d files in %s (read %s first)\n",
			filepath.Base(res.Dir), res.Entries, res.Transactions, len(res.Files), res.Dir, settleday.ManifestName(filepath.Base(res.Dir)))
		if o.taps != "" {
			fmt.Fprintf(stdout, "transit %s: %d taps cleared, %d records or files rejected, %d cards blacklisted (transit-%s.txt)\n",
				filepath.Base(res.Dir), res.TransitCleared, res.TransitRejected, res.TransitBlacklisted, filepath.Base(res.Dir))
		}
	}
	if res.Entries == 0 {
		fmt.Fprintf(stderr, "settle: warning: day %s: no node journaled a single entry; every file has zero records. "+
			"If traffic was expected, check -date and the nodes' cut-off\n", filepath.Base(res.Dir))
	}
	if res.Quarantined > 0 {
		fmt.Fprintf(stderr, "settle: settled %s with exceptions: %s (%s yuan) quarantined and left out of the clearing files and net positions, listed in %s\n",
			filepath.Base(res.Dir), quarantine.Records(res.Quarantined), res.QuarantinedAmount, res.Exceptions)
		return exitExceptions
	}
	return 0
}

const exitHelp = `Settles a business day from the switch nodes' sealed journals: one clearing
file per member and role (zero records when it had no traffic), the net
report, the exceptions report and manifest-YYYYMMDD.json (every file and its
SHA-256), published whole as OUT/YYYYMMDD (docs/clearing-format.md). Every
node of the config's nodes: list must have sealed the day; -without NODE
leaves a lost node out, on the record. With -taps DIR -operator-keys FILE
the day's tap files (DIR/YYYYMMDD/*.taps) are cleared too: fares between
transit operators in the same net report, per operator a transit clearing
file and its rejections, the day's blacklist (docs/transit.md); rejected
taps are the operators' to handle and leave the exit status as it is.
settle reconcile -h: compare the issuers' ledgers with their files.

exit status:
  0  settled: every settling record is in the files
  3  settled with exceptions: records that cannot be settled (an acquirer or
     issuer that is no member, DE32 the network's own institution, a field the
     clearing format cannot carry, the other half of such a reversal pair) were
     left out and listed in exceptions-YYYYMMDD.txt/.json; every file is
     written; one line on stderr gives the count and amount, even with -quiet
  1  failed (a node's sealed file missing, a corrupt sealed file, keys that
     do not open the PANs, ...): nothing published, the previous run of the
     day (if any) still whole
  2  bad usage`

func settle(o options, now time.Time) (settleday.Result, error) {
	cfg, err := node.LoadConfig(o.config)
	if err != nil {
		return settleday.Result{}, err
	}
	keys, err := loadKeys(o) // first: a key file that holds too much is refused whatever else is wrong
	if err != nil {
		return settleday.Result{}, err
	}
	nodes, err := nodeList(o.journals, cfg)
	if err != nil {
		return settleday.Result{}, err
	}
	day, err := dayOf(o.date, nodes, cfg, now)
	if err != nil {
		return settleday.Result{}, err
	}
	list, table, err := cfg.Network()
	if err != nil {
		return settleday.Result{}, err
	}
	var tr *settleday.Transit
	if o.taps != "" {
		masters, err := transit.LoadMasterKeys(o.operatorKeys)
		if err != nil {
			return settleday.Result{}, err
		}
		cutoff, err := nodesCutoff(nodes, cfg)
		if err != nil {
			return settleday.Result{}, err
		}
		tr = &settleday.Transit{TapDir: filepath.Join(o.taps, day), Masters: masters, Cards: transit.NewOperators(table, list),
			DayOf: func(t time.Time) string { return journal.BusinessDay(t, cutoff) }}
	}
	feeDoc := configs.Fees
	if o.feesFile != "" {
		if feeDoc, err = os.ReadFile(o.feesFile); err != nil {
			return settleday.Result{}, err
		}
	}
	schedule, err := fees.Parse(feeDoc)
	if err != nil {
		return settleday.Result{}, err
	}
	return settleday.Run(settleday.Config{Day: day, Nodes: nodes, Without: splitList(o.without), Keys: keys,
		Issuers: list, Fees: schedule, SwitchInstitution: cfg.Institution, Out: o.out, Transit: tr})
}

// nodeList is the config's nodes, or the directories of -journals with
// each node's ID read from the names of its sealed files.
func nodeList(journals string, cfg node.Config) ([]settleday.Node, error) {
	var out []settleday.Node
	if journals == "" {
		list, err := cfg.SettleNodes()
		if err != nil {
			return nil, err
		}
		for _, n := range list {
			out = append(out, settleday.Node{ID: n.ID, SealedDir: node.SealedDir(n.Data)})
		}
		return out, nil
	}
	seen := map[string]bool{}
	for _, dir := range splitList(journals) {
		clean := filepath.Clean(dir)
		if seen[clean] {
			return nil, fmt.Errorf("-journals names %s twice", dir)
		}
		seen[clean] = true
		id, err := nodeOf(dir)
		if err != nil {
			return nil, err
		}
		out = append(out, settleday.Node{ID: id, SealedDir: node.SealedDir(dir)})
	}
	return out, nil
}

// nodeOf is the ID of the node whose data directory is dir.
func nodeOf(dir string) (string, error) {
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("-journals: %w", err)
	}
	sealed := node.SealedDir(dir)
	names, _ := filepath.Glob(filepath.Join(sealed, "*.sealed"))
	ids := map[string]bool{}
	for _, p := range names {
		if id, _, ok := settleday.ParseSealedName(filepath.Base(p)); ok {
			ids[id] = true
		}
	}
	if len(ids) != 1 {
		return "", fmt.Errorf("-journals %s: %s holds sealed days of %d nodes, want one (is it a node's data directory? a node seals its first day seal_grace after the cut-off)", dir, sealed, len(ids))
	}
	for id := range ids {
		return id, nil
	}
	panic("unreachable")
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// dayOf parses -date, or picks the last business day closed at now by the
// cut-off the nodes recorded (all must agree), or the config's when no
// node recorded one.
func dayOf(date string, nodes []settleday.Node, cfg node.Config, now time.Time) (string, error) {
	if date != "" {
		t, err := time.Parse("2006-01-02", date)
		if err != nil {
			return "", fmt.Errorf("-date %q: want YYYY-MM-DD", date)
		}
		day := t.Format("20060102")
		return day, settleday.CheckDay(day)
	}
	cutoff, err := nodesCutoff(nodes, cfg)
	if err != nil {
		return "", err
	}
	return journal.PrevDay(journal.BusinessDay(now, cutoff)), nil
}

func nodesCutoff(nodes []settleday.Node, cfg node.Config) (journal.Cutoff, error) {
	var found journal.Cutoff
	from := ""
	for _, n := range nodes {
		c, ok, err := node.ReadCutoff(n.SealedDir)
		if err != nil {
			return found, err
		}
		if !ok {
			continue
		}
		if from != "" && c.String() != found.String() {
			return found, fmt.Errorf("nodes %s and %s record different cut-offs (%s, %s): give -date", from, n.ID, found, c)
		}
		found, from = c, n.ID
	}
	if from == "" {
		return cfg.CutoffSpec()
	}
	return found, nil
}

func loadKeys(o options) (*vault.DataKeys, error) {
	if o.keyEnv != "" {
		return vault.LoadDataKeysEnv(o.keyEnv)
	}
	return vault.LoadDataKeysFile(o.keys)
}

// parseFailed is the exit status of a failed parse: 0 for -h, else 2
// after one line on stderr.
func parseFailed(fs *cli.FlagSet, err error, stderr io.Writer) int {
	if errors.Is(err, cli.ErrHelp) {
		return cli.ExitOK
	}
	fmt.Fprintf(stderr, "%s: %v (%s -h lists the flags)\n", fs.Name(), err, fs.Name())
	return cli.ExitUsage
}

// oneLine keeps cron's mail to one line.
func oneLine(err error) string {
	return strings.ReplaceAll(err.Error(), "\n", " ")
}
