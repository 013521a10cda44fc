package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tapswitch/tapswitch/switch/journal"
)

// SealedDir is where a node writes its sealed business days, under its
// data directory; settle reads them from there.
func SealedDir(data string) string { return filepath.Join(data, "sealed") }

// CutoffFileName is the file in the sealed directory that records the
// node's cut-off ("23:00 Asia/Shanghai"), so that settle, run without a
// date, takes the last day closed by the nodes' cut-off, not its own.
const CutoffFileName = "cutoff"

// sealDaysPerPassMax bounds the days one pass seals: a node down for
// months catches up over several passes, seal_every apart.
const sealDaysPerPassMax = 64

// sealClosedDays seals every closed business day not sealed yet: at start
// (days that closed while the switch was down) and then every SealEvery.
func (n *Node) sealClosedDays(ctx context.Context) {
	ticker := time.NewTicker(n.cfg.SealEvery)
	defer ticker.Stop()
	for {
		n.SealClosedDays(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// SealClosedDays seals, in order, every business day closed at now (at
// least SealGrace past its cut-off) that is not sealed yet, traffic or
// not: an idle day is a sealed file of zero records. Days run without a
// gap from the node's first (its first entry or first seal, or the last
// closed day on a new node); a seal that fails stops the pass, so no later
// day is sealed while an earlier one is missing, and a sealed file that
// went missing is written again from the journal.
func (n *Node) SealClosedDays(now time.Time) {
	last := journal.PrevDay(n.Journal.BusinessDayOf(now.Add(-n.cfg.SealGrace)))
	days, err := n.Journal.Days()
	if err != nil {
		n.log.Error().Err(err).Msg("sealing: listing days failed")
		return
	}
	dir := SealedDir(n.cfg.Data)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		n.log.Error().Err(err).Msg("sealing: no sealed directory")
		return
	}
	if err := writeCutoff(dir, n.Journal.Cutoff()); err != nil {
		n.log.Error().Err(err).Msg("sealing: recording the cut-off failed")
	}
	sealed := 0
	for day := sealFrom(days, n.Journal.SealedDays(), last); day <= last && sealed < sealDaysPerPassMax; day = journal.NextDay(day) {
		path := filepath.Join(dir, journal.SealedFileName(n.cfg.NodeID, day))
		if n.Journal.IsSealed(day) {
			if _, err := os.Stat(path); err == nil {
				continue
			}
			n.log.Warn().Str("day", day).Msg("sealed file missing: writing it again from the journal")
		}
		if _, err := n.Journal.SealDay(day, n.cfg.NodeID, dir); err != nil {
			n.log.Error().Err(err).Str("day", day).Msg("sealing failed; later days wait for it")
			return
		}
		sealed++
		n.log.Info().Str("day", day).Str("file", path).Msg("business day sealed")
	}
}

// sealFrom is the first day a node seals: its earliest day with entries
// or sealed, or, on a node with neither, the last closed day.
func sealFrom(entryDays, sealedDays []string, last string) string {
	from := last
	for _, list := range [][]string{entryDays, sealedDays} {
		if len(list) > 0 && list[0] < from {
			from = list[0]
		}
	}
	return from
}

// writeCutoff records the cut-off in the sealed directory when it is not
// recorded already (temporary file, rename).
func writeCutoff(dir string, c journal.Cutoff) error {
	path := filepath.Join(dir, CutoffFileName)
	want := c.String() + "\n"
	if have, err := os.ReadFile(path); err == nil && string(have) == want {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(want), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ReadCutoff reads the cut-off a node recorded in its sealed directory;
// ok is false when it recorded none (a switch older than the record).
func ReadCutoff(sealedDir string) (c journal.Cutoff, ok bool, err error) {
	data, err := os.ReadFile(filepath.Join(sealedDir, CutoffFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return journal.Cutoff{}, false, nil
	}
	if err != nil {
		return journal.Cutoff{}, false, err
	}
	hhmm, zone, found := strings.Cut(strings.TrimSpace(string(data)), " ")
	if !found {
		return journal.Cutoff{}, false, fmt.Errorf("%s: want \"HH:MM Zone\"", filepath.Join(sealedDir, CutoffFileName))
	}
	c, err = journal.ParseCutoff(hhmm, zone)
	return c, err == nil, err
}

// openDayUnsealed refuses to start a node whose cut-off puts now into a
// business day it has sealed (a cut-off moved later on the day it was
// sealed): every tap would be refused 96 ("business day already sealed").
func openDayUnsealed(j *journal.Journal, cfg Config, now time.Time) error {
	day := j.BusinessDayOf(now)
	if !j.IsSealed(day) {
		return nil
	}
	return fmt.Errorf("config cutoff %s %s puts now (%s) into business day %s, which this node has sealed already: "+
		"every transaction would be refused; keep the cut-off the day was sealed with until the day is over, "+
		"or move it later from the next day on", cfg.Cutoff, cfg.Timezone, now.UTC().Format(time.RFC3339), day)
}

// ClosedDay is the answer of POST /admin/close-day.
type ClosedDay struct {
	Node       string `json:"node"`
	Day        string `json:"day"`         // the day closed and sealed, YYYYMMDD
	SealedFile string `json:"sealed_file"` // its sealed file
	NextDay    string `json:"next_day"`    // the day entries now belong to
}

// closeDay closes the open business day now and seals it (switchd -dev
// only: Config.CloseDayOnDemand).
func (n *Node) closeDay(w http.ResponseWriter, _ *http.Request) {
	dir := SealedDir(n.cfg.Data)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeCutoff(dir, n.Journal.Cutoff())
	day, path, err := n.Journal.CloseDay(time.Now(), n.cfg.NodeID, dir)
	if err != nil {
		n.log.Error().Err(err).Msg("close-day failed")
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	n.log.Warn().Str("day", day).Str("file", path).Msg("business day closed on demand (dev) and sealed")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(ClosedDay{Node: n.cfg.NodeID, Day: day, SealedFile: path, NextDay: journal.NextDay(day)})
}
