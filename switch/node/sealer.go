package node

import (
	"context"
	"os"
	"path/filepath"
	"time"
)

// SealedDir is where a node writes its sealed business days, under its
// data directory; settle reads them from there.
func SealedDir(data string) string { return filepath.Join(data, "sealed") }

// sealClosedDays seals every business day in the journal that closed at
// least SealGrace ago and is not sealed yet: at start (a day that closed
// while the switch was down) and then every SealEvery.
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

// SealClosedDays seals the days closed at now (at least SealGrace past
// their cut-off) that are not sealed yet.
func (n *Node) SealClosedDays(now time.Time) {
	open := n.Journal.BusinessDayOf(now.Add(-n.cfg.SealGrace))
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
	for _, day := range days {
		if day >= open || n.Journal.IsSealed(day) {
			continue
		}
		path, err := n.Journal.SealDay(day, n.cfg.NodeID, dir)
		if err != nil {
			n.log.Error().Err(err).Str("day", day).Msg("sealing failed")
			continue
		}
		n.log.Info().Str("day", day).Str("file", path).Msg("business day sealed")
	}
}
