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
//	settle -journals /var/lib/tapswitch/node-1,/var/lib/tapswitch/node-2 \
//	       -keys /etc/tapswitch/settle.keys -out /var/lib/tapswitch/clearing
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
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/node"
	"github.com/tapswitch/tapswitch/switch/vault"
)

func main() {
	os.Exit(run(os.Args[1:], time.Now(), os.Stdout, os.Stderr))
}

type options struct {
	date, journals, keys, keyEnv, out, config, feesFile string
	quiet                                               bool
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
	fs.StringVar(&o.date, "date", "", "business `day` YYYY-MM-DD (default: the last closed day)")
	fs.StringVar(&o.journals, "journals", "", "comma-separated switch node data `DIRS` (each has sealed/)")
	fs.StringVar(&o.keys, "keys", "", "data key `FILE`: the vault's data keys only, no index or token-master line (opens the sealed PANs for issuer files)")
	fs.StringVar(&o.keyEnv, "key-env", "", "environment `VARIABLE` holding the data keys instead of -keys")
	fs.StringVar(&o.out, "out", "", "output `DIR`; files go to DIR/YYYYMMDD/")
	fs.StringVar(&o.config, "config", "", "switch configuration `FILE` for cut-off, time zone, institution and members (default: built in)")
	fs.StringVar(&o.feesFile, "fees", "", "fee schedule `FILE` (default: the built-in configs/fees.yaml)")
	fs.BoolVar(&o.quiet, "quiet", false, "print nothing on success")
	if err := fs.Parse(args); err != nil {
		return parseFailed(fs, err, stderr)
	}
	if o.journals == "" || o.out == "" || (o.keys == "") == (o.keyEnv == "") {
		fmt.Fprintln(stderr, "settle: need -journals, -out and one of -keys or -key-env (settle -h)")
		return 2
	}
	res, err := settle(o, now)
	if err != nil {
		fmt.Fprintf(stderr, "settle: %v\n", oneLine(err))
		return 1
	}
	if !o.quiet {
		fmt.Fprintf(stdout, "settled %s: %d entries, %d settling transactions, %d files in %s\n",
			filepath.Base(res.Dir), res.Entries, res.Transactions, len(res.Files), res.Dir)
	}
	if res.Quarantined > 0 {
		fmt.Fprintf(stderr, "settle: settled %s with exceptions: %s (%s yuan) quarantined and left out of the clearing files and net positions, listed in %s\n",
			filepath.Base(res.Dir), quarantine.Records(res.Quarantined), res.QuarantinedAmount, res.Exceptions)
		return exitExceptions
	}
	return 0
}

const exitHelp = `Settles a business day from the switch nodes' sealed journals: one clearing
file per member and role, the net report and the exceptions report in
OUT/YYYYMMDD/ (docs/clearing-format.md).

exit status:
  0  settled: every settling record is in the files
  3  settled with exceptions: records that cannot be settled (an acquirer or
     issuer that is no member, DE32 the network's own institution, a field the
     clearing format cannot carry, the other half of such a reversal pair) were
     left out and listed in exceptions-YYYYMMDD.txt/.json; every file is
     written; one line on stderr gives the count and amount, even with -quiet
  1  failed (corrupt sealed file, keys that do not open the PANs, ...): no
     file written or replaced
  2  bad usage`

func settle(o options, now time.Time) (settleday.Result, error) {
	cfg, err := node.LoadConfig(o.config)
	if err != nil {
		return settleday.Result{}, err
	}
	day, err := dayOf(o.date, cfg, now)
	if err != nil {
		return settleday.Result{}, err
	}
	list, _, err := cfg.Network()
	if err != nil {
		return settleday.Result{}, err
	}
	keys, err := loadKeys(o)
	if err != nil {
		return settleday.Result{}, err
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
	var sealed []string
	for _, dir := range strings.Split(o.journals, ",") {
		sealed = append(sealed, node.SealedDir(strings.TrimSpace(dir)))
	}
	return settleday.Run(settleday.Config{Day: day, SealedDirs: sealed, Keys: keys, Issuers: list,
		Fees: schedule, SwitchInstitution: cfg.Institution, Out: o.out})
}

// dayOf parses -date, or picks the last closed business day at now.
func dayOf(date string, cfg node.Config, now time.Time) (string, error) {
	if date != "" {
		t, err := time.Parse("2006-01-02", date)
		if err != nil {
			return "", fmt.Errorf("-date %q: want YYYY-MM-DD", date)
		}
		return t.Format("20060102"), nil
	}
	cutoff, err := cfg.CutoffSpec()
	if err != nil {
		return "", err
	}
	open, _ := time.ParseInLocation("20060102", journal.BusinessDay(now, cutoff), cutoff.Location)
	return open.AddDate(0, 0, -1).Format("20060102"), nil
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
