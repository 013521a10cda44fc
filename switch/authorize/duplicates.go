package authorize

import (
	"context"
	"errors"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// Duplicates is the network-wide duplicate check of a cluster's nodes
// (switch/cluster). A single node has none (Deps.Duplicates nil): its
// journal's index is the check, and the pipeline looks it up on either
// kind of node before it calls Claim.
type Duplicates interface {
	// Claim claims key for this node before its request goes to the
	// issuer, after the node's own journal found no entry under it. A
	// non-nil hold means the key is this node's: the caller decides, then
	// calls Answered or Drop once. A nil hold means another node has or
	// had the key: first is its answer (its RC "" when that answer did not
	// come within the store's wait: the request is answered 91, never
	// sent). An error (wrapping ErrClusterUnavailable when the store has
	// no quorum) means the key could not be checked: 91, never sent.
	Claim(ctx context.Context, key journal.Key, digest [32]byte) (hold DuplicateHold, first FirstAnswer, err error)
}

// DuplicateHold is this node's claim on a duplicate key.
type DuplicateHold interface {
	// DecideBy is when the request must have left the issuer exchange
	// (answered, or given up as unanswered: 91, its reversal due): then
	// its answer is recorded before a retransmission on another node
	// stops waiting for it, so no node answers 91 to a request this node
	// approves.
	DecideBy() time.Time
	// Answered records the answer journaled under the key, for the
	// retransmissions other nodes get.
	Answered(ctx context.Context, a FirstAnswer) error
	// Drop gives the key up: the outcome was not journaled, so a
	// retransmission is a new request, as on one node.
	Drop(ctx context.Context)
}

// FirstAnswer is what a retransmission on another node is answered from.
type FirstAnswer struct {
	Digest   [32]byte // of the request first journaled under the key
	RC       string
	AuthCode string
	Issuer   string // for the metrics; "" when none was asked
}

// ErrClusterUnavailable wraps the errors of a store shared by a cluster's
// nodes (duplicate keys, stand-in usage) that cannot answer: the check it
// stands for cannot be made, so the tap is answered 91.
var ErrClusterUnavailable = errors.New("cluster store unavailable")

// claim checks req's key across the cluster, when there is one: with a
// hold (this node's claim) or, on a single node, with neither hold nor
// answer, the request goes on. answered true means it got its answer here
// (the first node's, 94, or 91), which is not journaled: the key belongs
// to the node that claimed it, or stays free when no node could.
func (p *Pipeline) claim(ctx context.Context, req Request) (DuplicateHold, Answer, outcome, bool) {
	if p.d.Duplicates == nil {
		return nil, Answer{}, outcome{}, false
	}
	hold, first, err := p.d.Duplicates.Claim(ctx, req.Key(), req.Digest())
	switch {
	case err != nil:
		p.d.Log.Error().Err(err).Str("stan", req.STAN).Str("terminal", req.TerminalID).
			Msg("duplicate key not checked across the cluster: 91")
		if errors.Is(err, ErrClusterUnavailable) {
			p.d.Metrics.ClusterUnavailable("duplicates")
		}
		return nil, answer(req, iso8583.RCIssuerUnavailable, ""), outcome{rc: iso8583.RCIssuerUnavailable}, true
	case hold != nil:
		return hold, Answer{}, outcome{}, false
	case first.RC == "":
		p.d.Log.Warn().Str("stan", req.STAN).Str("terminal", req.TerminalID).
			Msg("retransmission of a request another node has not answered: 91")
		return nil, answer(req, iso8583.RCIssuerUnavailable, ""), outcome{rc: iso8583.RCIssuerUnavailable}, true
	}
	a, o := p.duplicate(req, journal.Entry{RequestDigest: first.Digest, ResponseCode: first.RC,
		AuthCode: first.AuthCode, IssuerID: first.Issuer})
	return nil, a, o, true
}

// settleClaim records the outcome under the claimed key: the answer when it was
// journaled, else the key given up.
func (p *Pipeline) settleClaim(ctx context.Context, hold DuplicateHold, req Request, a Answer, o outcome) {
	if !o.journaled {
		hold.Drop(ctx)
		return
	}
	err := hold.Answered(ctx, FirstAnswer{Digest: req.Digest(), RC: a.RC, AuthCode: a.AuthCode, Issuer: o.issuer})
	if err != nil {
		// The answer is journaled here and goes to the terminal; a
		// retransmission on another node finds the key pending and is
		// answered 91 after the store's wait (docs/cluster.md, limits).
		p.d.Log.Error().Err(err).Str("stan", req.STAN).Str("terminal", req.TerminalID).
			Msg("answer not recorded across the cluster")
		if errors.Is(err, ErrClusterUnavailable) {
			p.d.Metrics.ClusterUnavailable("duplicates")
		}
	}
}
