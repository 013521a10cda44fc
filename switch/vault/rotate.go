package vault

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tapswitch/tapswitch/iso8583"
)

// Key rotation: SetKeyring swaps in a keyring with a new current data key
// while the vault serves; Rekey then re-seals every record still under an
// older version, in small synchronous batches, so that the old version can
// leave the key file. The package doc ("Keys", "Rotation") states the rules.

const (
	// RekeyBatchDefault is the batch the switch uses: small enough that a
	// Put or SetStatus waits for at most one batch's fsync, large enough
	// that the fsyncs do not dominate.
	RekeyBatchDefault = 256
	// rekeyBatchMax bounds one batch: the batch holds the write lock, so
	// its size is how long provisioning may stall.
	rekeyBatchMax = 4096
	// rekeyExamineMax bounds the records one step reads looking for stale
	// ones, so a cancel is noticed within that many reads even when most
	// records are already current.
	rekeyExamineMax = 16 * rekeyBatchMax
	// rekeyPassesMax bounds the passes of one Rekey. A pass ends with every
	// record it saw under the current key; only a SetKeyring during the pass
	// leaves work for the next.
	rekeyPassesMax = 4

	// keyVersionsKey holds the data key versions that records may be
	// sealed under: a superset of the versions in use, kept so that Open
	// and SetKeyring need not read every record to refuse a keyring that
	// lacks one. Layout: versions as big-endian uint16, strictly
	// ascending, at least one, then a CRC-32C of them.
	keyVersionsKey = "m/keyversions"
	// keyVersionsMax bounds the stored list; a keyring holds at most a few.
	keyVersionsMax = 1024
)

// ErrRekeyRunning is Rekey's answer while another Rekey runs.
var ErrRekeyRunning = errors.New("vault: a rekey is already running")

// ErrRekeyCluster is Rekey's answer on a node of a cluster.
var ErrRekeyCluster = errors.New("vault: rekey is not available in cluster mode yet (docs/cluster.md)")

// Versions lists the keyring's data key versions, ascending; the last is
// current.
func (k *DataKeys) Versions() []uint16 { return slices.Clone(k.versions) }

// SetKeyring makes keys the vault's keyring: new seals use its current
// version at once, and records under older versions still open. It refuses
// a keyring whose index key differs (every PAN index entry is a hash under
// the old one), one whose key for a version both hold differs, and one that
// lacks a version records may still be sealed under (run Rekey first). The
// token master may not change either.
// Setting the keyring the vault has is harmless.
func (v *Vault) SetKeyring(keys *Keyring) error {
	if keys == nil {
		return errors.New("vault: nil keyring")
	}
	v.writeMu.Lock()
	defer v.writeMu.Unlock()
	old := v.keys.Load()
	if !hmac.Equal(old.index, keys.index) {
		return errors.New("vault: the new keyring's index key differs; the index key never rotates")
	}
	if !hmac.Equal(old.tokenMaster, keys.tokenMaster) {
		return errors.New("vault: the new keyring's token master differs; the token master never rotates " +
			"(every phone holds a key derived from it)")
	}
	if err := sameDataKeys(old, keys); err != nil {
		return err
	}
	if err := v.admit(keys); err != nil {
		return err
	}
	v.keys.Store(keys)
	return nil
}

// sameDataKeys checks that every version both keyrings hold is the same
// key, by sealing with one and opening with the other: the keyring keeps
// only ciphers, never the key bytes.
func sameDataKeys(old, keys *Keyring) error {
	probe := []byte(keyCheckProbe)
	for ver, aead := range old.data {
		other, ok := keys.data[ver]
		if !ok {
			continue // admit decides whether dropping it is allowed
		}
		sealed := aead.Seal(nil, nil, probe, probe)
		if _, err := other.Open(nil, nil, sealed, probe); err != nil {
			return fmt.Errorf("vault: the new keyring's data key v%d differs from the one in use; a version's key never changes", ver)
		}
	}
	return nil
}

// admit checks keys against the store and records its current version as
// one records may be sealed under, together with the key check probe
// re-sealed under it, in one synchronous batch. That write comes before
// anything is sealed under the new version, so the stored list is always a
// superset of the versions in use. The caller holds writeMu or is Open.
func (v *Vault) admit(keys *Keyring) error {
	inUse, found, err := v.readKeyVersions()
	if err != nil {
		return err
	}
	if !found {
		// A vault from before the list existed, or a new one: count once.
		counts, err := v.VersionCounts()
		if err != nil {
			return err
		}
		inUse = slices.Sorted(maps.Keys(counts))
	}
	for _, ver := range inUse {
		if _, ok := keys.data[ver]; !ok {
			return fmt.Errorf("vault: records may still be sealed under data key v%d, which the keyring lacks; "+
				"keep v%d in the key file until a rekey completes", ver, ver)
		}
	}
	reseal, err := v.checkKeys(keys)
	if err != nil {
		return err
	}
	recordMaster, err := v.checkTokenMaster(keys)
	if err != nil {
		return err
	}
	want := inUse
	if !slices.Contains(want, keys.CurrentVersion()) {
		want = slices.Sorted(slices.Values(append(slices.Clone(inUse), keys.CurrentVersion())))
	}
	if found && !reseal && !recordMaster && slices.Equal(want, inUse) {
		return nil
	}
	b := v.db.NewBatch()
	defer b.Close()
	b.Set([]byte(keyVersionsKey), encodeKeyVersions(want), nil)
	if reseal {
		b.Set([]byte(keyCheckKey), keyCheckValue(keys), nil)
	}
	if recordMaster {
		b.Set([]byte(tokenMasterCheckKey), keys.tokenMasterCheck(), nil)
	}
	return v.commitLocal(b)
}

func encodeKeyVersions(versions []uint16) []byte {
	b := make([]byte, 0, 2*len(versions)+4)
	for _, ver := range versions {
		b = binary.BigEndian.AppendUint16(b, ver)
	}
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

func decodeKeyVersions(b []byte) ([]uint16, error) {
	if len(b) < 6 || len(b)%2 != 0 || len(b) > 2*keyVersionsMax+4 {
		return nil, fmt.Errorf("%w: key version list is %d bytes", ErrCorrupt, len(b))
	}
	body := b[:len(b)-4]
	if want, got := binary.BigEndian.Uint32(b[len(body):]), crc32.Checksum(body, crcTable); want != got {
		return nil, fmt.Errorf("%w: key version list CRC-32C %08x, stored %08x", ErrCorrupt, got, want)
	}
	out := make([]uint16, 0, len(body)/2)
	for i := 0; i < len(body); i += 2 {
		ver := binary.BigEndian.Uint16(body[i:])
		if ver == 0 || (len(out) > 0 && ver <= out[len(out)-1]) {
			return nil, fmt.Errorf("%w: key version list is not strictly ascending from 1", ErrCorrupt)
		}
		out = append(out, ver)
	}
	return out, nil
}

func (v *Vault) readKeyVersions() ([]uint16, bool, error) {
	val, closer, err := v.db.Get([]byte(keyVersionsKey))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("vault: key version list: %w", err)
	}
	defer closer.Close()
	versions, err := decodeKeyVersions(val)
	return versions, err == nil, err
}

// VersionCounts counts the token records sealed under each data key
// version, by reading every record. Deleted tokens count: their records
// still hold a sealed PAN.
func (v *Vault) VersionCounts() (map[uint16]int, error) {
	it, err := v.recordIter(recordKey(""))
	if err != nil {
		return nil, err
	}
	return countVersions(it)
}

// recordIter iterates the token records from key from on. An iterator is a
// consistent snapshot of the store.
func (v *Vault) recordIter(from []byte) (*pebble.Iterator, error) {
	it, err := v.db.NewIter(&pebble.IterOptions{LowerBound: from, UpperBound: []byte("t0")}) // '0' follows '/'
	if err != nil {
		return nil, fmt.Errorf("vault: scan records: %w", err)
	}
	return it, nil
}

// countVersions counts records per version and closes it.
func countVersions(it *pebble.Iterator) (map[uint16]int, error) {
	counts := make(map[uint16]int)
	var bad error
	for ok := it.First(); ok; ok = it.Next() {
		ver, err := sealedVersion(it.Key(), it.Value())
		if err != nil {
			bad = err
			break
		}
		counts[ver]++
	}
	if err := errors.Join(bad, it.Error(), it.Close()); err != nil {
		return nil, err
	}
	return counts, nil
}

// sealedVersion is the data key version of the record stored under key.
func sealedVersion(key, val []byte) (uint16, error) {
	token := string(key[len("t/"):])
	r, err := parseRecord(val)
	if err != nil {
		return 0, corrupt(token, err)
	}
	if len(r.sealedPAN) < sealOverheadBytes {
		return 0, corrupt(token, fmt.Errorf("sealed PAN is %d bytes", len(r.sealedPAN)))
	}
	return binary.BigEndian.Uint16(r.sealedPAN), nil
}

// Rekey re-seals every token record whose PAN is under a data key version
// other than the current one, batch records per synchronous commit, and
// returns how many it rewrote. Reads and writes go on meanwhile: each batch
// re-reads its records under the write lock, so a record that a Put or
// SetStatus changed since it was found is rewritten from what is stored
// now, or skipped if it is already current. A crash or cancel leaves a mix
// of versions, all of which open; running Rekey again finishes the job.
//
// When no record is left under an older version, the vault's list of
// versions in use shrinks to the current one, and from then on SetKeyring
// and Open accept a key file without the old versions. progress, if not
// nil, is called after each batch with the records rewritten so far and the
// number found stale. Only one Rekey runs at a time; Close cancels it.
func (v *Vault) Rekey(ctx context.Context, batch int, progress func(done, total int)) (int, error) {
	if batch < 1 || batch > rekeyBatchMax {
		return 0, fmt.Errorf("%w: rekey batch %d outside 1..%d", ErrInvalid, batch, rekeyBatchMax)
	}
	if v.log != nil {
		// The records are shared but each node's list of the versions in
		// use (m/keyversions) is its own: a rekey would have to settle
		// every node's list. Not built yet (docs/cluster.md, limits).
		return 0, ErrRekeyCluster
	}
	ctx, stop, err := v.rekey.start(ctx)
	if err != nil {
		return 0, err
	}
	defer stop()
	if progress == nil {
		progress = func(int, int) {}
	}
	done, total := 0, 0
	for pass := 0; ; pass++ {
		stale, err := v.settleVersions()
		if err != nil || stale == 0 {
			return done, err
		}
		if pass == rekeyPassesMax {
			return done, fmt.Errorf("vault: rekey: %d records still under older keys after %d passes; the keyring keeps changing, run it again", stale, pass)
		}
		total += stale
		progress(done, total)
		err = v.rekeyPass(ctx, batch, func(n int) {
			done += n
			progress(done, total)
		})
		if err != nil {
			return done, err
		}
	}
}

// settleVersions counts the records not under the current version. When
// there are none, it shrinks the stored list of versions in use to those
// that can still be: the current one, and any a SetKeyring added while the
// count ran (records sealed under them may have been written behind it).
func (v *Vault) settleVersions() (stale int, err error) {
	v.writeMu.Lock()
	before, _, err := v.readKeyVersions()
	current := v.keys.Load().CurrentVersion()
	var it *pebble.Iterator
	if err == nil {
		it, err = v.recordIter(recordKey(""))
	}
	v.writeMu.Unlock()
	if err != nil {
		return 0, err
	}
	counts, err := countVersions(it)
	if err != nil {
		return 0, err
	}
	for ver, n := range counts {
		if ver != current {
			stale += n
		}
	}
	if stale > 0 {
		return stale, nil
	}
	v.writeMu.Lock()
	defer v.writeMu.Unlock()
	now, _, err := v.readKeyVersions()
	if err != nil {
		return 0, err
	}
	keep := []uint16{current, v.keys.Load().CurrentVersion()}
	for _, ver := range now {
		if !slices.Contains(before, ver) {
			keep = append(keep, ver)
		}
	}
	slices.Sort(keep)
	keep = slices.Compact(keep)
	if slices.Equal(keep, now) {
		return 0, nil
	}
	if err := v.db.Set([]byte(keyVersionsKey), encodeKeyVersions(keep), pebble.Sync); err != nil {
		return 0, fmt.Errorf("vault: key version list: %w", err)
	}
	return 0, nil
}

// rekeyPass walks the records once in key order, re-sealing the stale ones
// batch at a time. Finding them needs no lock; rewriting them does.
func (v *Vault) rekeyPass(ctx context.Context, batch int, step func(n int)) error {
	from := recordKey("")
	for from != nil {
		if err := ctx.Err(); err != nil {
			return err
		}
		tokens, next, err := v.findStale(from, batch)
		if err != nil {
			return err
		}
		if len(tokens) > 0 {
			n, err := v.rekeyBatch(tokens)
			if err != nil {
				return err
			}
			step(n)
		}
		from = next
	}
	return nil
}

// findStale returns up to batch tokens from from on whose records are not
// under the current version, reading at most rekeyExamineMax records, and
// the key to go on from (nil at the end).
func (v *Vault) findStale(from []byte, batch int) (tokens []string, next []byte, err error) {
	current := v.keys.Load().CurrentVersion()
	it, err := v.recordIter(from)
	if err != nil {
		return nil, nil, err
	}
	examined := 0
	ok := it.First()
	for ; ok && len(tokens) < batch && examined < rekeyExamineMax; ok = it.Next() {
		examined++
		ver, verr := sealedVersion(it.Key(), it.Value())
		if verr != nil {
			err = verr
			break
		}
		if ver != current {
			tokens = append(tokens, string(it.Key()[len("t/"):]))
		}
	}
	if ok && err == nil {
		next = bytes.Clone(it.Key()) // the first record not yet examined
	}
	if err := errors.Join(err, it.Error(), it.Close()); err != nil {
		return nil, nil, fmt.Errorf("vault: rekey: %w", err)
	}
	return tokens, next, nil
}

// rekeyBatch re-seals tokens under the current version in one synchronous
// batch, reading each record again under the write lock: what findStale saw
// may be stale by now, and a record rewritten from it would undo a write.
func (v *Vault) rekeyBatch(tokens []string) (int, error) {
	v.writeMu.Lock()
	defer v.writeMu.Unlock()
	keys := v.keys.Load()
	current := keys.CurrentVersion()
	b := v.db.NewBatch()
	defer b.Close()
	for _, token := range tokens {
		r, found, err := v.load(token)
		if err != nil {
			return 0, err
		}
		if !found {
			continue // findStale saw it, so a bug; but nothing here to re-seal
		}
		if len(r.sealedPAN) >= sealHeaderBytes && binary.BigEndian.Uint16(r.sealedPAN) == current {
			continue // rewritten by a Put since findStale saw it
		}
		pan, err := keys.Open(r.sealedPAN, []byte(token))
		if err != nil {
			return 0, corrupt(token, err)
		}
		if !validNumber(string(pan)) {
			return 0, fmt.Errorf("%w for token %s: the sealed PAN is not a valid card number", ErrCorrupt, iso8583.PAN(token))
		}
		r.sealedPAN = keys.Seal(pan, []byte(token))
		clear(pan)
		b.Set(recordKey(token), r.encode(), nil)
	}
	n := int(b.Count())
	if n == 0 {
		return 0, nil
	}
	return n, v.commit(b)
}

// rekeyGuard lets one Rekey run at a time and lets Close cancel it and wait
// for it, so that no batch touches the store after it closes.
type rekeyGuard struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	closed bool
}

func (g *rekeyGuard) start(parent context.Context) (context.Context, func(), error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.closed:
		return nil, nil, errors.New("vault: closed")
	case g.cancel != nil:
		return nil, nil, ErrRekeyRunning
	}
	ctx, cancel := context.WithCancel(parent)
	done := make(chan struct{})
	g.cancel, g.done = cancel, done
	stop := func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		cancel()
		close(done)
		g.cancel, g.done = nil, nil
	}
	return ctx, stop, nil
}

func (g *rekeyGuard) close() {
	g.mu.Lock()
	g.closed = true
	cancel, done := g.cancel, g.done
	g.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}
