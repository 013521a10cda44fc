package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tapswitch/tapswitch/switch/cluster"
	"github.com/tapswitch/tapswitch/switch/journal"
	"github.com/tapswitch/tapswitch/switch/saf"
)

// Adoption (docs/cluster.md): a node whose heartbeat expired is dead; one
// survivor claims it, rebuilds its journal from the journal stream under
// DATA/adopted/<node>/journal, sends its armed and due advices over its
// own issuer links until none is left, and seals its closed days into
// DATA/adopted/<node>/sealed, where settle reads them (nodes: list the
// dead node with that directory as its data). The adopted journal is
// opened with the dead node's replica, so what the adopter writes (the
// advices' completions, the seal marks) is in the dead node's stream, and
// a node that returns applies it before it sends anything.

// AdoptedDir is where a node keeps a dead node's journal and sealed days.
func AdoptedDir(data, node string) string { return filepath.Join(data, "adopted", node) }

// adoptPollEvery is how often an adopter checks whether advices are left.
const adoptPollEvery = 200 * time.Millisecond

// runAdopter looks for dead nodes every half heartbeat TTL until ctx ends.
func (n *Node) runAdopter(ctx context.Context) {
	t := time.NewTicker(n.members.TTL() / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := n.adoptPass(ctx); err != nil && ctx.Err() == nil {
			n.log.Error().Err(err).Msg("adoption pass failed")
		}
	}
}

// adoptPass adopts every node of the journal stream that is not alive and
// not adopted, and goes on with this node's adoptions left waiting for a
// day to close.
func (n *Node) adoptPass(ctx context.Context) error {
	alive, quorum := n.members.Alive()
	if !quorum || n.members.QuorumHeldFor() < n.members.TTL() {
		// A node cut off from the quorum would take every other for dead,
		// and so would one that just got it back, before the others beat.
		return nil
	}
	for _, a := range alive {
		n.seenAlive[a] = true
	}
	nodes, err := n.journalStream.Nodes(ctx)
	if err != nil {
		return err
	}
	for _, dead := range nodes {
		if dead == n.cfg.NodeID || slices.Contains(alive, dead) {
			continue
		}
		state, adopter, rev, found, err := n.members.Adoption(ctx, dead)
		switch {
		case err != nil:
			return err
		case !found && !n.seenAlive[dead]:
			// Down since before this node started: not taken for dead, so a
			// whole network restarting does not adopt its late starters.
		case !found:
			// Alive may be a beat old, and a node coming back deletes its
			// adoption only after its heartbeat is stored: read that again
			// now that the adoption is known to be gone.
			var beating, won bool
			if beating, err = n.members.Beating(ctx, dead); err != nil || beating {
				return err
			}
			if rev, won, err = n.members.Claim(ctx, dead); err != nil || !won {
				return err
			}
			if err = n.awaitFenced(ctx); err != nil {
				return err
			}
			n.log.Warn().Str("node", dead).Msg("adopting a dead node: sending its advices")
			n.adopting.Add(1)
			err = n.adopt(ctx, dead, rev, true)
			n.adopting.Add(-1)
		case adopter == n.cfg.NodeID && state == cluster.AdoptWaiting && !n.dayClosedSince(dead):
		case adopter == n.cfg.NodeID && (state == cluster.AdoptWaiting || state == cluster.AdoptSending):
			n.adopting.Add(1)
			err = n.adopt(ctx, dead, rev, state == cluster.AdoptSending)
			n.adopting.Add(-1)
		}
		if err != nil {
			return fmt.Errorf("adoption of %s: %w", dead, err)
		}
	}
	return nil
}

// awaitFenced waits, after a claim, until the claimed node has surely
// stopped writing, if it is alive at all: a node that got its quorum back
// just before the claim (its heartbeat stored after this node read it)
// writes until its next heartbeat, at most two thirds of the TTL later,
// sees the adoption and stops; its last writes are acknowledged or failed
// within op_timeout. Only then is its journal read from the stream.
func (n *Node) awaitFenced(ctx context.Context) error {
	t := time.NewTimer(n.members.TTL()*2/3 + n.cfg.Cluster.OpTimeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// dayClosedSince says whether a business day has closed since the last
// look at dead's waiting adoption (the first look: yes).
func (n *Node) dayClosedSince(dead string) bool {
	last := journal.PrevDay(n.Journal.BusinessDayOf(time.Now().Add(-n.cfg.SealGrace)))
	if n.adoptChecked[dead] == last {
		return false
	}
	n.adoptChecked[dead] = last
	return true
}

// adopt opens the dead node's journal, sends its advices when send, and
// seals its closed days.
//
// The journal is opened only while the adoption is sending or sealing,
// states a returning node cannot take it from: opening it may write
// (advices made due), and the returning node must not write meanwhile.
func (n *Node) adopt(ctx context.Context, dead string, rev uint64, send bool) (err error) {
	if !send { // waiting: take the journal back for the seal
		if rev, err = n.members.SetAdoption(ctx, dead, cluster.AdoptSealing, rev); err != nil {
			return err
		}
	}
	j, err := n.openAdopted(dead)
	if err != nil {
		return err
	}
	defer j.Close()
	if send {
		if err := n.sendAdvices(ctx, j); err != nil {
			return err
		}
		n.log.Warn().Str("node", dead).Msg("adopted node: every advice sent")
	}
	if err := n.sealAdopted(dead, j); err != nil {
		return err
	}
	state := cluster.AdoptWaiting
	if n.adoptedDaysClosed(j) {
		state = cluster.AdoptDone
	}
	_, err = n.members.SetAdoption(ctx, dead, state, rev)
	return err
}

// openAdopted rebuilds the dead node's journal from the stream the first
// time, and opens it on the dead node's replica (catching up).
func (n *Node) openAdopted(dead string) (*journal.Journal, error) {
	dir := filepath.Join(AdoptedDir(n.cfg.Data, dead), "journal")
	replica := n.journalStream.Node(dead)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return nil, err
		}
		if err := journal.Restore(dir, replica); err != nil {
			return nil, err
		}
	}
	cutoff, err := n.cfg.CutoffSpec()
	if err != nil {
		return nil, err
	}
	return journal.Open(dir, journal.Options{Cutoff: cutoff, Replica: replica})
}

// sendAdvices runs a store-and-forward sender over j, on this node's
// issuer links, until nothing is armed or due (dead advices stay for an
// operator) or ctx ends.
func (n *Node) sendAdvices(ctx context.Context, j *journal.Journal) error {
	ac := n.cfg.Advices
	s, err := saf.New(saf.Config{
		Journal: j, Keys: n.Vault.Keys, Issuers: n.adviceIssuers, Institution: n.cfg.Institution,
		RetryMin: ac.RetryMin, RetryMax: ac.RetryMax, AttemptsMax: ac.AttemptsMax,
		InFlightMax: ac.InFlightMax, PollEvery: adoptPollEvery, Now: time.Now,
		Log: n.log.With().Str("component", "saf-adopted").Logger(),
	})
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Run(sctx)
	}()
	defer func() { cancel(); <-done }()
	t := time.NewTicker(adoptPollEvery)
	defer t.Stop()
	for {
		c, err := j.AdviceCounts()
		if err != nil {
			return err
		}
		if c[journal.AdviceArmed]+c[journal.AdviceDue] == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// sealAdopted writes the sealed files of the adopted journal's closed
// days that are not written yet.
func (n *Node) sealAdopted(dead string, j *journal.Journal) error {
	last := n.lastClosedDay(j)
	days, err := j.Days()
	if err != nil {
		return err
	}
	// Days the dead node sealed itself are written again (the same bytes):
	// their files were on the machine that was lost.
	dir := SealedDir(AdoptedDir(n.cfg.Data, dead))
	var toSeal []string
	for _, d := range days {
		if _, err := os.Stat(filepath.Join(dir, journal.SealedFileName(dead, d))); d <= last && err != nil {
			toSeal = append(toSeal, d)
		}
	}
	if len(toSeal) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := writeCutoff(dir, j.Cutoff()); err != nil { // settle without -date reads it
		return err
	}
	for _, d := range toSeal {
		if _, err := j.SealDay(d, dead, dir); err != nil {
			return err
		}
	}
	return nil
}

// rebuildJournal runs when this node comes back from an adoption: its
// journal is rebuilt from the stream, and the local one is kept aside.
// After an adoption the stream is the truth: the adopter acted on it (it
// sent the reversals of what the stream shows armed). A batch this node
// committed locally whose acknowledgement failed before it was cut off is
// not in the stream; its terminal was answered with an error, and its
// issuer call was reversed by the adopter, so it must not settle.
func (n *Node) rebuildJournal(dir string, replica journal.Replica) error {
	if _, err := os.Stat(dir); err == nil {
		aside := fmt.Sprintf("%s-before-adoption-%d", dir, time.Now().Unix())
		if err := os.Rename(dir, aside); err != nil {
			return fmt.Errorf("journal: setting the local journal aside: %w", err)
		}
		n.log.Warn().Str("kept", aside).Msg("back from an adoption: journal rebuilt from its stream; the local one is kept aside")
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("journal: %w", err)
	}
	return journal.Restore(dir, replica)
}

// lastClosedDay is the last business day closed (seal_grace past its
// cut-off) now.
func (n *Node) lastClosedDay(j *journal.Journal) string {
	return journal.PrevDay(j.BusinessDayOf(time.Now().Add(-n.cfg.SealGrace)))
}

// adoptedDaysClosed says whether no day of the adopted journal is open.
func (n *Node) adoptedDaysClosed(j *journal.Journal) bool {
	days, err := j.Days()
	return err == nil && (len(days) == 0 || days[len(days)-1] <= n.lastClosedDay(j))
}

// returnFromAdoption runs at start, before the journal opens: a node that
// was adopted takes its journal back once the adopter no longer writes it
// (it refuses to start while its advices are being sent or its days
// sealed). It returns the adoption's revision to end once the journal has
// caught up, 0 when the node was not adopted.
func (n *Node) returnFromAdoption(ctx context.Context) (uint64, error) {
	state, adopter, rev, found, err := n.members.Adoption(ctx, n.cfg.NodeID)
	if err != nil || !found {
		return 0, err
	}
	if state == cluster.AdoptSending || state == cluster.AdoptSealing {
		return 0, fmt.Errorf("cluster: node %s was taken for dead and %s is %s its journal; start it again once that is done (docs/cluster.md)",
			n.cfg.NodeID, adopter, state)
	}
	rev, err = n.members.SetAdoption(ctx, n.cfg.NodeID, cluster.AdoptReturned, rev)
	if err != nil {
		return 0, fmt.Errorf("cluster: taking node %s back from %s: %w", n.cfg.NodeID, adopter, err)
	}
	n.log.Warn().Str("adopter", adopter).Str("state", state).Msg("this node was adopted: catching up from its journal stream")
	return rev, nil
}
