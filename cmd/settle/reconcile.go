package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/internal/cli"
	"github.com/tapswitch/tapswitch/settlement"
	"github.com/tapswitch/tapswitch/settlement/clearing"
	"github.com/tapswitch/tapswitch/settlement/reconcile"
	"github.com/tapswitch/tapswitch/settlement/settleday"
	"github.com/tapswitch/tapswitch/switch/node"
)

// runReconcile is `settle reconcile`: each issuer's own ledger for the day
// (the ledger-ISSUER.json files issuersim writes) against that issuer's
// clearing file. Reports go next to the clearing files; any break is a
// non-zero exit, so cron mails it.
func runReconcile(args []string, now time.Time, stdout, stderr io.Writer) int {
	fs := cli.New("settle reconcile", "Compares each issuer's own ledger with its clearing file and lists every break; exit 1 on any.", stdout, stderr)
	date := fs.String("date", "", "business `day` YYYY-MM-DD (default: the last closed day)")
	ledgers := fs.String("ledgers", "", "`DIR` holding the issuers' ledger-ISSUER.json files")
	out := fs.String("out", "", "settle's output `DIR` (clearing files in DIR/YYYYMMDD/)")
	config := fs.String("config", "", "switch configuration `FILE` (default: built in)")
	quiet := fs.Bool("quiet", false, "print nothing when there are no breaks")
	if err := fs.Parse(args); err != nil {
		return parseFailed(fs, err, stderr)
	}
	if *ledgers == "" || *out == "" {
		fmt.Fprintln(stderr, "settle reconcile: need -ledgers and -out (settle reconcile -h)")
		return 2
	}
	breaks, summary, err := reconcileDay(*date, *ledgers, *out, *config, now)
	if err != nil {
		fmt.Fprintf(stderr, "settle reconcile: %v\n", oneLine(err))
		return 1
	}
	if breaks > 0 {
		fmt.Fprintf(stderr, "settle reconcile: %d breaks (%s)\n", breaks, summary)
		return 1
	}
	if !*quiet {
		fmt.Fprintf(stdout, "reconciled: %s, no breaks\n", summary)
	}
	return 0
}

// reconcileDay reconciles every issuer that has a ledger file and returns
// the number of breaks.
func reconcileDay(date, ledgers, out, config string, now time.Time) (int, string, error) {
	cfg, err := node.LoadConfig(config)
	if err != nil {
		return 0, "", err
	}
	nodes, err := nodeList("", cfg)
	if err != nil {
		return 0, "", err
	}
	day, err := dayOf(date, nodes, cfg, now)
	if err != nil {
		return 0, "", err
	}
	list, _, err := cfg.Network()
	if err != nil {
		return 0, "", err
	}
	// The consumer's rule: the manifest first, through the day's link
	// resolved once, every file checked against it.
	_, dir, err := settleday.ReadManifest(out, day)
	if err != nil {
		return 0, "", err
	}
	breaks, checked := 0, 0
	for _, is := range list {
		snap, err := readLedger(filepath.Join(ledgers, issuersim.LedgerFileName(is.ID)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, "", err
		}
		details, err := issuerDetails(filepath.Join(dir, clearing.FileID(day, is.Institution, clearing.Issuer)+".clr"))
		if err != nil {
			return 0, "", err
		}
		entries, err := ledgerEntries(snap, day)
		if err != nil {
			return 0, "", fmt.Errorf("%s: %w", is.ID, err)
		}
		rep, err := reconcile.Day(day, entries, details)
		if err != nil {
			return 0, "", fmt.Errorf("%s: %w", is.ID, err)
		}
		rep.Institution = is.Institution
		if err := writeReport(dir, is.ID, rep); err != nil {
			return 0, "", err
		}
		breaks += len(rep.Breaks)
		checked++
	}
	if checked == 0 {
		return 0, "", fmt.Errorf("no ledger-*.json in %s", ledgers)
	}
	return breaks, fmt.Sprintf("%s, %d issuers, reports in %s", day, checked, dir), nil
}

func readLedger(path string) (issuersim.Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return issuersim.Snapshot{}, err
	}
	defer f.Close()
	snap, err := issuersim.ReadSnapshot(f)
	if err != nil {
		return snap, fmt.Errorf("%s: %w", path, err)
	}
	return snap, nil
}

// issuerDetails reads an issuer's clearing file; none means no traffic.
func issuerDetails(path string) ([]clearing.Detail, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f, err := clearing.Read(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return f.Details, nil
}

// ledgerEntries converts the simulator's ledger postings that concern day:
// posted on it, or reversed on it.
func ledgerEntries(snap issuersim.Snapshot, day string) ([]reconcile.LedgerEntry, error) {
	var out []reconcile.LedgerEntry
	for _, l := range snap.Ledger {
		if l.BusinessDay != day && l.Reversal.BusinessDay != day {
			continue
		}
		dir, ok := settlement.DirectionOf(l.ProcessingCode)
		if !ok {
			return nil, fmt.Errorf("ledger entry %d: processing code %s does not settle", l.Seq, l.ProcessingCode)
		}
		out = append(out, reconcile.LedgerEntry{
			STAN: l.STAN, TransmissionTime: l.TransmissionTime, ProcessingCode: l.ProcessingCode,
			Amount: l.Amount, Direction: dir, RRN: l.RRN, TerminalID: strings.TrimSpace(l.TerminalID),
			AuthCode: l.AuthCode, BusinessDay: l.BusinessDay, Reversed: l.Reversed, ReversalDay: l.Reversal.BusinessDay,
		})
	}
	return out, nil
}

func writeReport(dir, issuerID string, rep reconcile.Report) error {
	for ext, data := range map[string][]byte{".txt": rep.Text(), ".json": rep.JSON()} {
		path := filepath.Join(dir, "reconcile-"+issuerID+ext)
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, data, 0o640); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
	}
	return nil
}
