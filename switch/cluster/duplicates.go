package cluster

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// DuplicatesConfig names the bucket of the duplicate keys.
type DuplicatesConfig struct {
	Bucket   string // e.g. "tapswitch_duplicates"
	Replicas int    // 3 in a cluster of three NATS servers; 1 to 5
	// OpTimeout bounds each read or write; a store that does not answer
	// within it (no quorum) makes the request 91.
	OpTimeout time.Duration
	// MaxAge is how long a key is kept: a retransmission on another node
	// later than this is not recognised (its own node's journal still
	// answers it). Between PendingWait and a week.
	MaxAge time.Duration
	// PendingWait bounds how long a retransmission waits for the answer of
	// the node working on its key; then it is answered 91, never sent. The
	// node working on it gives its issuer exchange up after half of it
	// (DecideBy), so the other half must hold a journal append and an
	// answer's write: at least 2 OpTimeout.
	PendingWait time.Duration
	// NodeID is this node's, written into its claims: a claim of its own
	// that it finds pending under its in-flight lock is one it gave up on
	// (a claim whose write timed out, or made before a restart), and it
	// takes it over as one node would process the retransmission.
	NodeID string
}

// duplicatesMaxAgeHigh bounds MaxAge: a week, the longest reversal_age_max.
const duplicatesMaxAgeHigh = 7 * 24 * time.Hour

// pendingPoll is how often a retransmission reads a pending key again.
const pendingPoll = 20 * time.Millisecond

// Duplicates is authorize.Duplicates on a JetStream key-value bucket shared
// by every node: key (terminal, STAN, DE7) is one bucket key. A node
// claims it with Create before the request goes further: the stream takes
// the write only if the key does not exist, through its RAFT leader with a
// quorum of replicas, so of two nodes claiming one key exactly one wins.
// The winner records the journaled answer with Update on its claim's
// revision; a loser reads the key until it holds an answer (or until
// PendingWait) and answers from it.
type Duplicates struct {
	kv      jetstream.KeyValue
	timeout time.Duration
	wait    time.Duration
	node    string
}

// OpenDuplicates creates the bucket, or binds to it when another node did.
func OpenDuplicates(ctx context.Context, js jetstream.JetStream, cfg DuplicatesConfig) (*Duplicates, error) {
	if cfg.Bucket == "" || cfg.Replicas < 1 || cfg.Replicas > 5 || cfg.OpTimeout <= 0 || cfg.NodeID == "" ||
		cfg.PendingWait < 2*cfg.OpTimeout || cfg.MaxAge < cfg.PendingWait || cfg.MaxAge > duplicatesMaxAgeHigh || len(cfg.NodeID) > 255 {
		return nil, fmt.Errorf("cluster duplicates: bucket %q, replicas %d (1-5), op timeout %v (> 0), node %q (1-255 bytes), pending wait %v (at least 2 op timeouts), max age %v (pending wait to %v)",
			cfg.Bucket, cfg.Replicas, cfg.OpTimeout, cfg.NodeID, cfg.PendingWait, cfg.MaxAge, duplicatesMaxAgeHigh)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "tapswitch: each request's duplicate key (terminal, STAN, DE7), claimed, then its first answer",
		History:     1,
		TTL:         cfg.MaxAge,
		Replicas:    cfg.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster duplicates bucket %s: %w", cfg.Bucket, err)
	}
	return &Duplicates{kv: kv, timeout: cfg.OpTimeout, wait: cfg.PendingWait, node: cfg.NodeID}, nil
}

// duplicateKey is the bucket key of k: the terminal ID in hex (it may hold
// any printable ASCII, bucket keys may not), STAN and DE7 (digits).
func duplicateKey(k journal.Key) string {
	return hex.EncodeToString([]byte(k.TerminalID)) + "." + k.STAN + "." + k.TransmissionTime
}

// Claim implements authorize.Duplicates. The caller holds this node's
// in-flight lock of key.
func (d *Duplicates) Claim(ctx context.Context, key journal.Key, digest [32]byte) (authorize.DuplicateHold, authorize.FirstAnswer, error) {
	k := duplicateKey(key)
	pending := encodeClaim(claimRecord{digest: digest, node: d.node})
	var deadline time.Time // PendingWait after the other claim was first seen
	for {
		claimed := time.Now() // before the write: no other node can have seen the claim earlier
		rev, err := d.op(ctx, func(ctx context.Context) (uint64, error) { return d.kv.Create(ctx, k, pending) })
		if err == nil {
			return &duplicateClaim{d: d, key: k, rev: rev, decideBy: claimed.Add(d.wait / 2)}, authorize.FirstAnswer{}, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, authorize.FirstAnswer{}, fmt.Errorf("%w: claim: %w", authorize.ErrClusterUnavailable, err)
		}
		if deadline.IsZero() {
			// Only now is the other claim known to be written, so
			// after its node read the clock for its DecideBy.
			deadline = time.Now().Add(d.wait)
		}
		hold, first, again, err := d.await(ctx, k, pending, deadline)
		if !again {
			return hold, first, err
		}
	}
}

// await reads key k, claimed by another node (or by this one before), until
// it holds an answer or deadline passes (then first.RC is ""). again: the
// key was given up meanwhile, claim it.
func (d *Duplicates) await(ctx context.Context, k string, pending []byte, deadline time.Time) (hold authorize.DuplicateHold, first authorize.FirstAnswer, again bool, err error) {
	for {
		var kve jetstream.KeyValueEntry
		_, err = d.op(ctx, func(ctx context.Context) (uint64, error) {
			var err error
			kve, err = d.kv.Get(ctx, k)
			return 0, err
		})
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, first, true, nil // dropped (or a replica behind the claim: Create says)
		}
		if err != nil {
			return nil, first, false, fmt.Errorf("%w: read claim: %w", authorize.ErrClusterUnavailable, err)
		}
		rec, err := decodeClaim(kve.Value())
		if err != nil {
			return nil, first, false, fmt.Errorf("duplicate key %s at revision %d: %w", k, kve.Revision(), err)
		}
		if rec.answered {
			return nil, authorize.FirstAnswer{Digest: rec.digest, RC: rec.rc, AuthCode: rec.authCode, Issuer: rec.issuer}, false, nil
		}
		if rec.node == d.node {
			// This node's own claim, and this node holds the key's
			// in-flight lock: no request of this node is working on it.
			claimed := time.Now()
			rev, err := d.op(ctx, func(ctx context.Context) (uint64, error) { return d.kv.Update(ctx, k, pending, kve.Revision()) })
			if err == nil {
				return &duplicateClaim{d: d, key: k, rev: rev, decideBy: claimed.Add(d.wait / 2)}, first, false, nil
			}
			if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
				return nil, first, false, fmt.Errorf("%w: take over claim: %w", authorize.ErrClusterUnavailable, err)
			}
		}
		if !time.Now().Before(deadline) {
			return nil, first, false, nil
		}
		select {
		case <-time.After(pendingPoll):
		case <-ctx.Done():
			return nil, first, false, ctx.Err()
		}
	}
}

// op runs one store operation within the store's timeout.
func (d *Duplicates) op(ctx context.Context, f func(context.Context) (uint64, error)) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return f(ctx)
}

// duplicateClaim is this node's claim on a key, at the claim's revision.
type duplicateClaim struct {
	d        *Duplicates
	key      string
	rev      uint64
	decideBy time.Time
}

// DecideBy implements authorize.DuplicateHold: half the pending wait after
// the claim was sent. A retransmission elsewhere started waiting after the
// claim was written, so the other half is left for the journal append and
// the answer's write (OpTimeout, at most a quarter of the wait:
// docs/cluster.md).
func (c *duplicateClaim) DecideBy() time.Time { return c.decideBy }

// Answered implements authorize.DuplicateHold: the answer replaces the
// claim, on the claim's revision.
func (c *duplicateClaim) Answered(ctx context.Context, a authorize.FirstAnswer) error {
	value := encodeClaim(claimRecord{answered: true, digest: a.Digest, node: c.d.node, rc: a.RC,
		authCode: a.AuthCode, issuer: a.Issuer})
	_, err := c.d.op(ctx, func(ctx context.Context) (uint64, error) { return c.d.kv.Update(ctx, c.key, value, c.rev) })
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("duplicate key %s: claim at revision %d overwritten: %w", c.key, c.rev, err)
	}
	if err != nil {
		return fmt.Errorf("%w: record answer: %w", authorize.ErrClusterUnavailable, err)
	}
	return nil
}

// Drop implements authorize.DuplicateHold: the key is deleted if it is
// still the claim. A failed delete leaves it pending: this node takes it
// over on a retransmission, another node answers that 91 after its wait.
func (c *duplicateClaim) Drop(ctx context.Context) {
	_, _ = c.d.op(ctx, func(ctx context.Context) (uint64, error) {
		return 0, c.d.kv.Delete(ctx, c.key, jetstream.LastRevision(c.rev))
	})
}

var _ authorize.Duplicates = (*Duplicates)(nil)
