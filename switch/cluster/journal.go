package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tapswitch/tapswitch/switch/journal"
)

// JournalConfig names the stream the nodes' journal batches are copied to.
type JournalConfig struct {
	Stream   string // e.g. "tapswitch_journal"; node N's batches go to subject Stream.N
	Replicas int    // 3 in a cluster of three NATS servers; 1 to 5
	// OpTimeout bounds the wait for one batch's acknowledgement and each
	// read when replaying.
	OpTimeout time.Duration
}

// batchHeader carries a message's batch number.
const batchHeader = "Tapswitch-Batch"

// duplicateWindow is how long the stream remembers a batch's message ID:
// a batch sent again after a lost acknowledgement within it is stored
// once (after it, twice, and applied once: journal.Replica).
const duplicateWindow = 10 * time.Minute

// JournalStream is the replicated stream of every node's journal batches.
type JournalStream struct {
	js      jetstream.JetStream
	stream  jetstream.Stream
	name    string
	timeout time.Duration
}

// OpenJournalStream creates the stream, or binds to it when another node
// did.
func OpenJournalStream(ctx context.Context, js jetstream.JetStream, cfg JournalConfig) (*JournalStream, error) {
	if cfg.Stream == "" || cfg.Replicas < 1 || cfg.Replicas > 5 || cfg.OpTimeout <= 0 {
		return nil, fmt.Errorf("cluster journal: stream %q, replicas %d (1-5), op timeout %v (> 0)",
			cfg.Stream, cfg.Replicas, cfg.OpTimeout)
	}
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cfg.Stream,
		Description: "tapswitch: every node's journal batches, in commit order",
		Subjects:    []string{cfg.Stream + ".*"},
		Replicas:    cfg.Replicas,
		Storage:     jetstream.FileStorage,
		Duplicates:  duplicateWindow,
		AllowDirect: true,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster journal stream %s: %w", cfg.Stream, err)
	}
	return &JournalStream{js: js, stream: s, name: cfg.Stream, timeout: cfg.OpTimeout}, nil
}

// Node is the replica of one node's journal.
func (s *JournalStream) Node(id string) journal.Replica {
	return &nodeJournal{s: s, node: id, subject: s.name + "." + id}
}

type nodeJournal struct {
	s             *JournalStream
	node, subject string
}

// Publish implements journal.Replica.
func (n *nodeJournal) Publish(batch uint64, repr []byte) func() (uint64, error) {
	m := nats.NewMsg(n.subject)
	m.Data = repr
	num := strconv.FormatUint(batch, 10)
	m.Header.Set(batchHeader, num)
	// No retry inside the client: a batch stored after a later one would
	// break the journal's floor (journal.Replica); the journal sends a
	// failed batch again itself, before any later one.
	f, err := n.s.js.PublishMsgAsync(m, jetstream.WithMsgID(n.node+"-"+num), jetstream.WithStallWait(n.s.timeout),
		jetstream.WithRetryAttempts(0))
	if err != nil {
		return func() (uint64, error) { return 0, err }
	}
	return func() (uint64, error) {
		t := time.NewTimer(n.s.timeout)
		defer t.Stop()
		select {
		case ack := <-f.Ok():
			return ack.Sequence, nil
		case err := <-f.Err():
			return 0, err
		case <-t.C:
			return 0, fmt.Errorf("no acknowledgement within %v", n.s.timeout)
		}
	}
}

// Replay implements journal.Replica: one direct get per batch, the next
// of this node's subject, up to the last stored when it started.
func (n *nodeJournal) Replay(after uint64, fn func(streamSeq, batch uint64, repr []byte) error) error {
	last, err := n.last()
	if err != nil || last == nil {
		return err
	}
	for seq := after + 1; seq <= last.Sequence; {
		ctx, cancel := context.WithTimeout(context.Background(), n.s.timeout)
		var m *jetstream.RawStreamMsg
		err := whileNoResponders(ctx, func() (err error) {
			m, err = n.s.stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(n.subject))
			return err
		})
		cancel()
		if err != nil {
			return fmt.Errorf("journal stream %s after %d: %w", n.subject, seq, err)
		}
		b, err := batchOf(m)
		if err != nil {
			return err
		}
		if err := fn(m.Sequence, b, m.Data); err != nil {
			return err
		}
		seq = m.Sequence + 1
	}
	return nil
}

// LastBatch implements journal.Replica.
func (n *nodeJournal) LastBatch() (uint64, error) {
	m, err := n.last()
	if err != nil || m == nil {
		return 0, err
	}
	return batchOf(m)
}

// last is the node's last message, nil when it has none.
func (n *nodeJournal) last() (*jetstream.RawStreamMsg, error) {
	ctx, cancel := context.WithTimeout(context.Background(), n.s.timeout)
	defer cancel()
	var m *jetstream.RawStreamMsg
	err := whileNoResponders(ctx, func() (err error) {
		m, err = n.s.stream.GetLastMsgForSubject(ctx, n.subject)
		return err
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("journal stream %s: last message: %w", n.subject, err)
	}
	return m, nil
}

func batchOf(m *jetstream.RawStreamMsg) (uint64, error) {
	b, err := strconv.ParseUint(m.Header.Get(batchHeader), 10, 64)
	if err != nil || b == 0 {
		return 0, fmt.Errorf("journal stream message %d on %s: batch header %q", m.Sequence, m.Subject, m.Header.Get(batchHeader))
	}
	return b, nil
}

// BindJournalStream binds to an existing journal stream without changing
// it: for tools that read it (tapctl journal restore).
func BindJournalStream(ctx context.Context, js jetstream.JetStream, name string, timeout time.Duration) (*JournalStream, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("cluster journal stream %s: %w", name, err)
	}
	return &JournalStream{js: js, stream: s, name: name, timeout: timeout}, nil
}

// whileNoResponders calls get again, every 50 ms until ctx ends, while
// JetStream has no responders: a stream just created, or whose servers
// just came back, has no leader to answer for a moment.
func whileNoResponders(ctx context.Context, get func() error) error {
	for {
		err := get()
		if !errors.Is(err, nats.ErrNoResponders) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}
