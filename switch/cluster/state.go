package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/switch/metrics"
	"github.com/tapswitch/tapswitch/switch/replica"
)

// StateConfig is the replicated log of the nodes' stores: the vault's and
// the token service's Pebble batches on one JetStream stream, a subject
// per store (docs/cluster.md, "Slice: tokens and token-service data").
type StateConfig struct {
	// Stream names the stream, one per network; its subjects are
	// <Stream>.<store>.
	Stream string
	// Replicas of the stream: 3 on three NATS servers (1 to 5).
	Replicas int
	// BytesMax bounds the stream. Past it a write is refused (the stream
	// discards new messages, never old ones: a new node replays from the
	// first). Bounded because everything is.
	BytesMax int64
	// OpTimeout bounds one write: the append acknowledged by a quorum and
	// applied on this node.
	OpTimeout time.Duration
	// CatchUpTimeout bounds the catch-up of a store when it is attached
	// (a new node replays the whole log).
	CatchUpTimeout time.Duration
	Log            zerolog.Logger
}

// batchBytesMax bounds one replicated batch: NATS's default payload limit.
const batchBytesMax = 1 << 20

// State is the replicated log of the node's stores.
type State struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    StateConfig

	mu   sync.Mutex
	logs []*storeLog // for Stats
}

// OpenState creates the stream, or binds to it when another node did.
func OpenState(ctx context.Context, js jetstream.JetStream, cfg StateConfig) (*State, error) {
	if cfg.Stream == "" || cfg.Replicas < 1 || cfg.Replicas > 5 || cfg.OpTimeout <= 0 ||
		cfg.CatchUpTimeout <= 0 || cfg.BytesMax <= 0 {
		return nil, fmt.Errorf("cluster state: stream %q, replicas %d (1-5), op timeout %v, catch-up timeout %v, bytes max %d (> 0)",
			cfg.Stream, cfg.Replicas, cfg.OpTimeout, cfg.CatchUpTimeout, cfg.BytesMax)
	}
	stream, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "tapswitch: the Pebble batches of every node's vault and token service, in commit order",
		Subjects:    []string{cfg.Stream + ".*"},
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    cfg.BytesMax,
		MaxMsgSize:  batchBytesMax,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster state stream %s: %w", cfg.Stream, err)
	}
	return &State{js: js, stream: stream, cfg: cfg}, nil
}

// Store returns the attachment of the store named store (a subject token:
// "vault", "tokens") to its log.
func (s *State) Store(store string) replica.Open {
	return func(db *pebble.DB) (replica.Log, error) { return s.follow(store, db) }
}

// storeLog is one store's log and its follower on this node.
type storeLog struct {
	state   *State
	subject string
	db      *pebble.DB
	log     zerolog.Logger
	applied atomic.Uint64
	cc      jetstream.ConsumeContext
	// For metrics: the last batch's delay from append to apply here, and
	// this node's writes by outcome.
	applyDelay                        atomic.Int64
	committed, conflicts, unavailable atomic.Uint64

	// applyMu is held across each batch's apply, so that Close can wait
	// for the one running and let no other start (the store closes its
	// Pebble after Close).
	applyMu sync.Mutex
	stopped bool

	mu      sync.Mutex
	changed chan struct{} // closed and replaced at each applied batch
	broken  error         // a batch this node failed to apply: it follows no more
}

func (s *State) follow(store string, db *pebble.DB) (*storeLog, error) {
	l := &storeLog{state: s, subject: s.cfg.Stream + "." + store, db: db, changed: make(chan struct{}),
		log: s.cfg.Log.With().Str("component", "replica").Str("store", store).Logger()}
	from, err := replica.Applied(db)
	if err != nil {
		return nil, err
	}
	l.applied.Store(from)
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{l.subject}}
	if from > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from+1
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CatchUpTimeout)
	defer cancel()
	cons, err := s.stream.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("cluster state %s: %w", l.subject, err)
	}
	if l.cc, err = cons.Consume(l.apply, jetstream.ConsumeErrHandler(l.consumeError)); err != nil {
		return nil, fmt.Errorf("cluster state %s: %w", l.subject, err)
	}
	if err := l.catchUp(ctx); err != nil {
		l.Close()
		return nil, fmt.Errorf("cluster state %s: catching up: %w", l.subject, err)
	}
	l.log.Info().Uint64("from", from).Uint64("applied", l.applied.Load()).Msg("store caught up with its log")
	s.mu.Lock()
	s.logs = append(s.logs, l)
	s.mu.Unlock()
	return l, nil
}

// apply is the follower: the consumer delivers the store's batches in log
// order, one at a time.
func (l *storeLog) apply(msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		l.log.Error().Err(err).Msg("replicated batch without metadata")
		return
	}
	seq := meta.Sequence.Stream
	l.applyMu.Lock()
	defer l.applyMu.Unlock()
	if l.stopped || seq <= l.applied.Load() || l.isBroken() {
		return // a redelivery after a consumer reset
	}
	if err := replica.Apply(l.db, seq, msg.Data()); err != nil {
		// A local disk failure or a bug: applying later batches over a
		// missing one would make this node's store wrong, so it stops, and
		// every write through it fails until the node is restarted.
		l.log.Error().Err(err).Uint64("seq", seq).Msg("replicated batch not applied; the store follows no more")
		l.mu.Lock()
		l.broken = err
		l.mu.Unlock()
		return
	}
	l.applied.Store(seq)
	l.applyDelay.Store(int64(time.Since(meta.Timestamp)))
	l.mu.Lock()
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *storeLog) consumeError(_ jetstream.ConsumeContext, err error) {
	l.log.Warn().Err(err).Msg("store log consumer")
}

func (l *storeLog) isBroken() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.broken != nil
}

// Applied implements replica.Log.
func (l *storeLog) Applied() uint64 { return l.applied.Load() }

// waitApplied returns once the follower has applied seq.
func (l *storeLog) waitApplied(ctx context.Context, seq uint64) error {
	for {
		l.mu.Lock()
		changed, broken := l.changed, l.broken
		l.mu.Unlock()
		switch {
		case broken != nil:
			return fmt.Errorf("%w: this node's follower stopped: %v", replica.ErrUnavailable, broken)
		case l.applied.Load() >= seq:
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%w: batch %d not applied on this node in time (applied %d)",
				replica.ErrUnavailable, seq, l.applied.Load())
		}
	}
}

// catchUp waits until the follower has applied the store's last batch in
// the log, as the stream leader knows it now.
func (l *storeLog) catchUp(ctx context.Context) error {
	last, err := l.state.stream.GetLastMsgForSubject(ctx, l.subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %v", replica.ErrUnavailable, err)
	}
	return l.waitApplied(ctx, last.Sequence)
}

// Commit implements replica.Log: one append with the expected last
// sequence of the store's subject, checked by the stream's leader in log
// order (the compare-and-swap of the counter windows, on a whole batch).
func (l *storeLog) Commit(repr []byte, base uint64) (uint64, error) {
	seq, err := l.commit(repr, base)
	switch {
	case err == nil:
		l.committed.Add(1)
	case errors.Is(err, replica.ErrConflict):
		l.conflicts.Add(1)
	case errors.Is(err, replica.ErrUnavailable):
		l.unavailable.Add(1)
	}
	return seq, err
}

func (l *storeLog) commit(repr []byte, base uint64) (uint64, error) {
	if len(repr) > batchBytesMax {
		return 0, fmt.Errorf("cluster state %s: batch of %d bytes, more than %d", l.subject, len(repr), batchBytesMax)
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.state.cfg.OpTimeout)
	defer cancel()
	ack, err := l.state.js.Publish(ctx, l.subject, repr,
		jetstream.WithExpectStream(l.state.cfg.Stream), jetstream.WithExpectLastSequencePerSubject(base))
	if last, conflict := wrongLastSequence(err); conflict {
		// Wait for the batch that came first, so the write runs again on
		// it: the one the leader names (10071), or any after base (10164
		// names none). Asking the leader for the subject's last batch
		// would cost a round trip the node that won does not pay, and
		// with it the next race.
		if err := l.waitApplied(ctx, max(last, base+1)); err != nil {
			return 0, err
		}
		return 0, replica.ErrConflict
	}
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %v", replica.ErrUnavailable, l.subject, err)
	}
	if err := l.waitApplied(ctx, ack.Sequence); err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// wrongLastSequence: the leader refused the append because the subject's
// last sequence was not the expected one (10071, or 10164 on a replicated
// stream); last is the one it has, as its description says ("wrong last
// sequence: N"), 0 when it does not.
func wrongLastSequence(err error) (last uint64, conflict bool) {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || (apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence &&
		apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return 0, false
	}
	_, text, _ := strings.Cut(apiErr.Description, ":")
	last, _ = strconv.ParseUint(strings.TrimSpace(text), 10, 64)
	return last, true
}

// Stats reports each attached store for the node's metrics.
func (s *State) Stats() []metrics.StateStore {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]metrics.StateStore, 0, len(s.logs))
	for _, l := range s.logs {
		out = append(out, metrics.StateStore{Store: l.subject[len(s.cfg.Stream)+1:], Applied: l.applied.Load(),
			ApplyDelay: time.Duration(l.applyDelay.Load()), Committed: l.committed.Load(),
			Conflicts: l.conflicts.Load(), Unavailable: l.unavailable.Load()})
	}
	return out
}

// Close implements replica.Log.
func (l *storeLog) Close() error {
	l.cc.Stop()
	l.applyMu.Lock()
	l.stopped = true
	l.applyMu.Unlock()
	return nil
}
