package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Membership: each node puts its ID into a key-value bucket whose entries
// live HeartbeatTTL, every third of it. A node whose key has expired is
// taken for dead; one survivor adopts it (claims it with Create of its key
// in the adoptions bucket, which exactly one Create wins) and finishes its
// advices from its replicated journal (switch/node/adopt.go).
//
// An adoption's value is "<state> <adopter>". States, in order:
//
//	sending  the adopter sends the dead node's advices (it writes the journal)
//	waiting  nothing armed or due is left; a day of the journal is still open
//	sealing  the adopter seals closed days (it writes the journal)
//	done     every day of the journal is sealed
//	returned the node came back and is catching up; it deletes the key
//
// Only the adopter writes the dead node's journal, and only in sending or
// sealing, each entered by a compare-and-swap; a returning node may take
// the key (returned) only from waiting or done, by a compare-and-swap too,
// so the two never write the journal at once.

// MembersConfig names the buckets of membership and adoption.
type MembersConfig struct {
	Bucket          string // heartbeats, e.g. "tapswitch_nodes"
	AdoptionsBucket string // adoptions, e.g. "tapswitch_adoptions"
	Replicas        int
	HeartbeatTTL    time.Duration // a node silent this long is dead
	OpTimeout       time.Duration
}

// Adoption states.
const (
	AdoptSending  = "sending"
	AdoptWaiting  = "waiting"
	AdoptSealing  = "sealing"
	AdoptDone     = "done"
	AdoptReturned = "returned"
)

// ErrAdoptionMoved is returned by SetAdoption when the adoption is no
// longer at the revision the caller holds.
var ErrAdoptionMoved = errors.New("cluster: adoption changed meanwhile")

// Members is this node's view of the cluster's nodes.
type Members struct {
	beats, adoptions jetstream.KeyValue
	node             string
	ttl, timeout     time.Duration

	mu     sync.Mutex
	alive  []string
	beatAt time.Time // when the last heartbeat that was stored began
	// heldSince is when the current run of heartbeats within the TTL began.
	heldSince time.Time
	// adoptedBy is set once this node, alive, finds itself adopted: it was
	// taken for dead (cut off longer than the TTL) and another node writes
	// its journal now. It has no quorum from then on (ErrAdopted).
	adoptedBy string
}

// ErrAdopted is Beat's and Run's error once this node finds that another
// node adopted it while it was cut off: it must stop writing at once and
// start again, which takes its journal back once the adopter is done.
var ErrAdopted = errors.New("cluster: this node was taken for dead and adopted while cut off; restart it to take its journal back")

// OpenMembers creates or binds the two buckets.
func OpenMembers(ctx context.Context, js jetstream.JetStream, cfg MembersConfig, node string) (*Members, error) {
	if cfg.Bucket == "" || cfg.AdoptionsBucket == "" || cfg.Replicas < 1 || cfg.Replicas > 5 ||
		cfg.HeartbeatTTL < time.Second || cfg.OpTimeout <= 0 {
		return nil, fmt.Errorf("cluster members: buckets %q %q, replicas %d (1-5), heartbeat TTL %v (>= 1s), op timeout %v",
			cfg.Bucket, cfg.AdoptionsBucket, cfg.Replicas, cfg.HeartbeatTTL, cfg.OpTimeout)
	}
	if node == "" || strings.ContainsAny(node, ".*> ") {
		return nil, fmt.Errorf("cluster members: node ID %q cannot be a key", node)
	}
	beats, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: cfg.Bucket,
		Description: "tapswitch: the nodes alive (heartbeats)", History: 1, TTL: cfg.HeartbeatTTL,
		Replicas: cfg.Replicas, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("cluster members bucket %s: %w", cfg.Bucket, err)
	}
	adoptions, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: cfg.AdoptionsBucket,
		Description: "tapswitch: which node finishes a dead node's advices", History: 1,
		Replicas: cfg.Replicas, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("cluster adoptions bucket %s: %w", cfg.AdoptionsBucket, err)
	}
	return &Members{beats: beats, adoptions: adoptions, node: node, ttl: cfg.HeartbeatTTL, timeout: cfg.OpTimeout}, nil
}

// TTL is the heartbeat TTL.
func (m *Members) TTL() time.Duration { return m.ttl }

// Beat stores this node's heartbeat, reads who is alive, and checks that
// no node adopted this one meanwhile. The quorum is counted from the
// moment the heartbeat was sent, not acknowledged: the node's own view of
// its quorum then always ends before its heartbeat expires on the
// servers, so by the time another node can take it for dead it has
// stopped writing (the journal's writes ask for the quorum first).
func (m *Members) Beat(ctx context.Context) error {
	// A heartbeat later than a third of the TTL is no use: the next is due.
	ctx, cancel := context.WithTimeout(ctx, min(m.timeout, m.ttl/3))
	defer cancel()
	sent := time.Now()
	_, err := m.beats.Put(ctx, m.node, []byte(sent.UTC().Format(time.RFC3339Nano)))
	var alive []string
	if err == nil {
		alive, err = m.listAlive(ctx)
	}
	adopter := ""
	if err == nil {
		adopter, err = m.readAdopter(ctx)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.adoptedBy != "":
		return ErrAdopted
	case adopter != "":
		m.adoptedBy = adopter
		return fmt.Errorf("%w (by %s)", ErrAdopted, adopter)
	case err != nil:
		return err
	}
	if !m.quorumLocked() {
		m.heldSince = sent
	}
	m.alive, m.beatAt = alive, sent
	return nil
}

// readAdopter returns the adopter of this node, "" when it has none or has
// taken its journal back (returned, at its start).
func (m *Members) readAdopter(ctx context.Context) (string, error) {
	e, err := m.adoptions.Get(ctx, m.node)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	state, adopter, _ := strings.Cut(string(e.Value()), " ")
	if state == AdoptReturned {
		return "", nil
	}
	return adopter, nil
}

func (m *Members) quorumLocked() bool {
	return m.adoptedBy == "" && !m.beatAt.IsZero() && time.Since(m.beatAt) < m.ttl
}

func (m *Members) listAlive(ctx context.Context) ([]string, error) {
	lister, err := m.beats.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	var alive []string
	for k := range lister.Keys() {
		alive = append(alive, k)
	}
	slices.Sort(alive)
	return alive, nil
}

// Run beats every third of the TTL until ctx ends (nil) or the node finds
// itself adopted (ErrAdopted).
func (m *Members) Run(ctx context.Context) error {
	t := time.NewTicker(m.ttl / 3)
	defer t.Stop()
	for {
		if err := m.Beat(ctx); errors.Is(err, ErrAdopted) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Alive is the nodes whose heartbeat was current at the last beat, and
// whether this node's own last heartbeat reached the quorum within the TTL.
func (m *Members) Alive() (nodes []string, quorum bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.alive), m.quorumLocked()
}

// QuorumHeldFor is how long this node has had the quorum without a break:
// 0 without it. A node missing from Alive is dead only to a node that has
// held the quorum a whole TTL since it last had none: any node that shares
// the quorum has beaten in that time. Without that rule, nodes that lost
// the quorum together (the heartbeat bucket's leader died, and a new one
// was elected) would take each other for dead when it comes back.
func (m *Members) QuorumHeldFor() time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.quorumLocked() {
		return 0
	}
	return time.Since(m.heldSince)
}

// Stop removes this node's heartbeat at once (a clean shutdown).
func (m *Members) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), m.timeout)
	defer cancel()
	_ = m.beats.Delete(ctx, m.node)
}

// Beating reads node's heartbeat afresh: whether it is stored now (Alive
// is as old as this node's last beat).
func (m *Members) Beating(ctx context.Context, node string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	_, err := m.beats.Get(ctx, node)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Claim takes the adoption of a dead node: true for exactly one claimant.
func (m *Members) Claim(ctx context.Context, dead string) (rev uint64, won bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	rev, err = m.adoptions.Create(ctx, dead, []byte(AdoptSending+" "+m.node))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, false, nil
	}
	return rev, err == nil, err
}

// Adoption reads the adoption of node; found false when it has none.
func (m *Members) Adoption(ctx context.Context, node string) (state, adopter string, rev uint64, found bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	e, err := m.adoptions.Get(ctx, node)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", "", 0, false, nil
	}
	if err != nil {
		return "", "", 0, false, err
	}
	state, adopter, _ = strings.Cut(string(e.Value()), " ")
	return state, adopter, e.Revision(), true, nil
}

// SetAdoption moves node's adoption to state if it is still at rev.
func (m *Members) SetAdoption(ctx context.Context, node, state string, rev uint64) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	rev, err := m.adoptions.Update(ctx, node, []byte(state+" "+m.node), rev)
	if errors.Is(err, jetstream.ErrKeyExists) || isWrongSequence(err) {
		return 0, ErrAdoptionMoved
	}
	return rev, err
}

// EndAdoption deletes node's adoption if it is still at rev.
func (m *Members) EndAdoption(ctx context.Context, node string, rev uint64) error {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	err := m.adoptions.Delete(ctx, node, jetstream.LastRevision(rev))
	if isWrongSequence(err) {
		return ErrAdoptionMoved
	}
	return err
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence
}

// Nodes lists the nodes that have batches in the journal stream.
func (s *JournalStream) Nodes(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	info, err := s.stream.Info(ctx, jetstream.WithSubjectFilter(s.name+".*"))
	if err != nil {
		return nil, err
	}
	var nodes []string
	for subj := range info.State.Subjects {
		nodes = append(nodes, strings.TrimPrefix(subj, s.name+"."))
	}
	slices.Sort(nodes)
	return nodes, nil
}
