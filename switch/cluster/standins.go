package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapswitch/tapswitch/switch/authorize"
	"github.com/tapswitch/tapswitch/switch/journal"
)

// StandInsConfig names the bucket of the tokens' stand-in usage.
type StandInsConfig struct {
	Bucket   string // e.g. "tapswitch_stand_in"
	Replicas int    // 3 in a cluster of three NATS servers; 1 to 5
	// OpTimeout bounds each read or compare-and-swap; a store that does not
	// answer within it (no quorum) means no stand-in: 91.
	OpTimeout time.Duration
}

// standInMaxAge is how long a token's usage of a day is kept: a business
// day is 24 hours, and its key is no longer read once the day is over.
const standInMaxAge = 48 * time.Hour

// giveBackTriesMax bounds the compare-and-swaps that return a stand-in
// approval that was not journaled; after it the usage stays counted (the
// safe side of a cap).
const giveBackTriesMax = 16

// StandIns is authorize.StandIns on a JetStream key-value bucket shared by
// every node: token T's usage on business day D is key D.T. A stand-in
// approval takes its count and amount by Update on the revision read, so
// two nodes standing in for one token from the same usage cannot both
// succeed: the loser reads the usage again and decides again.
type StandIns struct {
	kv      jetstream.KeyValue
	timeout time.Duration
}

// OpenStandIns creates the bucket, or binds to it when another node did.
func OpenStandIns(ctx context.Context, js jetstream.JetStream, cfg StandInsConfig) (*StandIns, error) {
	if cfg.Bucket == "" || cfg.Replicas < 1 || cfg.Replicas > 5 || cfg.OpTimeout <= 0 {
		return nil, fmt.Errorf("cluster stand-in: bucket %q, replicas %d (1-5), op timeout %v (> 0)",
			cfg.Bucket, cfg.Replicas, cfg.OpTimeout)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "tapswitch: each token's stand-in approvals per business day (count, amount)",
		History:     1,
		TTL:         standInMaxAge,
		Replicas:    cfg.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster stand-in bucket %s: %w", cfg.Bucket, err)
	}
	return &StandIns{kv: kv, timeout: cfg.OpTimeout}, nil
}

// standIn is one stand-in decision's view of a token's usage of a day.
type standIn struct {
	s      *StandIns
	key    string
	used   journal.Usage
	rev    uint64 // 0: no usage yet
	took   bool   // Take took an approval
	amount int64  // the approval's amount
}

// Hold implements authorize.StandIns.
func (s *StandIns) Hold(ctx context.Context, day, token string) (authorize.StandInHold, error) {
	h := &standIn{s: s, key: day + "." + token, used: journal.Usage{Day: day, Token: token}}
	if err := h.read(ctx); err != nil {
		return nil, err
	}
	return h, nil
}

// read loads the stored usage.
func (h *standIn) read(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, h.s.timeout)
	defer cancel()
	kve, err := h.s.kv.Get(ctx, h.key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		h.used.Count, h.used.Amount, h.rev = 0, 0, 0
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: read stand-in usage: %w", authorize.ErrClusterUnavailable, err)
	}
	u, err := decodeUsage(kve.Value())
	if err != nil {
		return fmt.Errorf("stand-in usage %s at revision %d: %w", h.key, kve.Revision(), err)
	}
	h.used.Count, h.used.Amount, h.rev = int(u.count), u.amount, kve.Revision()
	return nil
}

// Used implements authorize.StandInHold.
func (h *standIn) Used() journal.Usage { return h.used }

// Take implements authorize.StandInHold: one compare-and-swap; a lost one
// reads the usage again. No journal record: the usage lives in the bucket.
func (h *standIn) Take(ctx context.Context, amount int64) (*journal.Usage, bool, error) {
	next := usageRecord{count: uint64(h.used.Count) + 1, amount: h.used.Amount + amount}
	rev, lost, err := h.swap(ctx, next)
	if err != nil {
		return nil, false, err
	}
	if lost {
		return nil, false, h.read(ctx)
	}
	h.used.Count, h.used.Amount, h.rev, h.took, h.amount = int(next.count), next.amount, rev, true, amount
	return nil, true, nil
}

// swap writes u on h's revision; lost: the usage had moved on.
func (h *standIn) swap(ctx context.Context, u usageRecord) (rev uint64, lost bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, h.s.timeout)
	defer cancel()
	if h.rev == 0 {
		rev, err = h.s.kv.Create(ctx, h.key, encodeUsage(u))
	} else {
		rev, err = h.s.kv.Update(ctx, h.key, encodeUsage(u), h.rev)
	}
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return 0, true, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("%w: take stand-in usage: %w", authorize.ErrClusterUnavailable, err)
	}
	return rev, false, nil
}

// Release implements authorize.StandInHold: an approval taken but not
// journaled is given back, as far as the store lets it within
// giveBackTriesMax swaps; otherwise it stays counted, which only makes the
// cap stricter.
func (h *standIn) Release(journaled bool) {
	if journaled || !h.took {
		return
	}
	h.took = false
	ctx := context.Background()
	for range giveBackTriesMax {
		if h.used.Count < 1 || h.used.Amount < h.amount {
			return // the day's usage was reset under us (a new key): nothing to give back
		}
		back := usageRecord{count: uint64(h.used.Count) - 1, amount: h.used.Amount - h.amount}
		if _, lost, err := h.swap(ctx, back); err != nil || !lost {
			return
		}
		if err := h.read(ctx); err != nil {
			return
		}
	}
}

var _ authorize.StandIns = (*StandIns)(nil)
