package vault

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const rotateTokens = 1000

// writeTestKeyFile writes a key file holding the test index key and the given
// data key versions, as an operator would edit it.
func writeTestKeyFile(t testing.TB, path string, versions ...byte) *Keyring {
	t.Helper()
	text := "# test keys\nindex: " + testKey(0xee) + "\ntoken-master: " + testKey(0x7a) + "\n"
	for _, v := range versions {
		text += fmt.Sprintf("v%d: %s\n", v, testKey(v))
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := LoadKeyringFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rotateToken is token i of the rotation tests, spread over 16 devices so
// no device reaches its limit.
func rotateToken(i int) Token { return sampleToken(i, fmt.Sprintf("device-%02d", i%16)) }

// fillVault opens a vault under v1 from a key file and writes n tokens.
// The caller closes it (Pebble panics on a second Close).
func fillVault(t testing.TB, n int) (v *Vault, dir, keyFile string) {
	t.Helper()
	dir, keyFile = t.TempDir(), filepath.Join(t.TempDir(), "vault.keys")
	v = openTest(t, dir, writeTestKeyFile(t, keyFile, 1))
	for i := range n {
		mustPut(t, v, rotateToken(i))
	}
	return v, dir, keyFile
}

// closeIfOpen closes v unless a test closed it and set it to nil: Pebble
// panics on a second Close.
func closeIfOpen(v *Vault) {
	if v != nil {
		v.Close()
	}
}

func assertCounts(t testing.TB, v *Vault, want map[uint16]int) {
	t.Helper()
	got, err := v.VersionCounts()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("version counts %v, want %v", got, want)
	}
}

// TestRotationWhileServing is the Done-when line of the key rotation:
// tokens written under v1, v2 added to the key file and swapped in, Rekey
// run while eight goroutines read random tokens and change some. Every read
// returns the right PAN throughout, no concurrent write is lost, and no v1
// record is left; the key file can then drop v1.
func TestRotationWhileServing(t *testing.T) {
	v, dir, keyFile := fillVault(t, rotateTokens)
	defer func() { closeIfOpen(v) }()
	assertCounts(t, v, map[uint16]int{1: rotateTokens})
	if err := v.SetKeyring(writeTestKeyFile(t, keyFile, 1, 2)); err != nil {
		t.Fatal(err)
	}

	const workers = 8
	var stop atomic.Bool
	var wg sync.WaitGroup
	final := make([]map[int]Token, workers) // each worker's last write per token it owns
	var reads atomic.Int64
	for w := range workers {
		final[w] = make(map[int]Token)
		wg.Go(func() { serve(t, v, w, workers, final[w], &stop, &reads) })
	}
	var last int
	done, err := v.Rekey(context.Background(), 64, func(d, total int) {
		// The workers' Puts re-seal some records themselves, so the
		// total found stale may be under rotateTokens.
		if d < last || d > total || total > rotateTokens {
			t.Errorf("progress %d/%d after %d: want rising done within a total up to %d", d, total, last, rotateTokens)
		}
		last = d
	})
	stop.Store(true)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if done == 0 || done != last {
		t.Fatalf("Rekey rewrote %d records, last progress %d", done, last)
	}
	if reads.Load() == 0 {
		t.Fatal("no reads ran during the rekey")
	}
	created := 0
	for w := range workers {
		for i, want := range final[w] {
			if got := mustGet(t, v, want.Token); !reflect.DeepEqual(got, want) {
				t.Fatalf("token %d after rekey = %+v\nwant the last write %+v", i, got, want)
			}
			if i >= rotateTokens {
				created++
			}
		}
	}
	assertCounts(t, v, map[uint16]int{2: rotateTokens + created})

	// v1 is no longer in use: a key file without it is accepted, now and
	// at the next start, and every token still detokenizes under it.
	v2only := writeTestKeyFile(t, keyFile, 2)
	if err := v.SetKeyring(v2only); err != nil {
		t.Fatalf("SetKeyring without v1 after the rekey: %v", err)
	}
	v.Close()
	v = nil
	v = openTest(t, dir, v2only)
	for i := range rotateTokens {
		if got := mustGet(t, v, rotateToken(i).Token); got.PAN != rotateToken(i).PAN {
			t.Fatalf("token %d detokenizes to %s after dropping v1", i, got.PAN)
		}
	}
}

// serve is one worker of TestRotationWhileServing: it reads random tokens
// and checks their PANs, and changes the tokens it owns (those with
// i%workers == w), by SetStatus, by Put of a changed record, and by Put of
// new tokens, remembering its last write of each in final.
func serve(t *testing.T, v *Vault, w, workers int, final map[int]Token, stop *atomic.Bool, reads *atomic.Int64) {
	rng := rand.New(rand.NewPCG(uint64(w), 7))
	next := rotateTokens + w // new tokens this worker creates
	for n := 0; !stop.Load(); n++ {
		i := rng.IntN(rotateTokens)
		got, err := v.Get(rotateToken(i).Token.Clear())
		if err != nil {
			t.Errorf("Get token %d during rekey: %v", i, err)
			return
		}
		if got.PAN != rotateToken(i).PAN {
			t.Errorf("token %d detokenized to %s during rekey", i, got.PAN)
			return
		}
		reads.Add(1)
		if n%4 != 0 {
			continue
		}
		if err := change(v, rng, w, workers, final, &next); err != nil {
			t.Errorf("worker %d: %v", w, err)
			return
		}
	}
}

// change makes one write to a token worker w owns and records it in final.
func change(v *Vault, rng *rand.Rand, w, workers int, final map[int]Token, next *int) error {
	i := rng.IntN(rotateTokens/workers)*workers + w
	tok, ok := final[i]
	if !ok {
		tok = rotateToken(i)
	}
	switch rng.IntN(3) {
	case 0:
		tok.Status = map[Status]Status{StatusActive: StatusSuspended, StatusSuspended: StatusActive}[tok.Status]
		if err := v.SetStatus(tok.Token.Clear(), tok.Status); err != nil {
			return err
		}
	case 1:
		tok.TokenExpiry = fmt.Sprintf("27%02d", 1+rng.IntN(12))
		if err := v.Put(tok); err != nil {
			return err
		}
	default:
		if *next >= 3*rotateTokens {
			return nil // enough new tokens; devices hold at most 256
		}
		i, *next = *next, *next+workers
		tok = rotateToken(i)
		if err := v.Put(tok); err != nil {
			return err
		}
	}
	final[i] = tok
	return nil
}

func TestSetKeyringRefuses(t *testing.T) {
	v, dir, keyFile := fillVault(t, 20)
	defer func() { closeIfOpen(v) }()
	otherIndex, err := ParseKeyring([]byte("index: " + testKey(0x11) + "\nv1: " + testKey(1) + "\nv2: " + testKey(2) + "\ntoken-master: " + testKey(0x7a)))
	if err != nil {
		t.Fatal(err)
	}
	otherV1, err := ParseKeyring([]byte("index: " + testKey(0xee) + "\nv1: " + testKey(0x51) + "\nv2: " + testKey(2) + "\ntoken-master: " + testKey(0x7a)))
	if err != nil {
		t.Fatal(err)
	}
	otherMaster, err := ParseKeyring([]byte("index: " + testKey(0xee) + "\nv1: " + testKey(1) + "\nv2: " + testKey(2) + "\ntoken-master: " + testKey(0x7b)))
	if err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name    string
		keys    *Keyring
		wantErr string
	}{
		{"another index key", otherIndex, "index key differs"},
		{"another token master", otherMaster, "token master differs"},
		{"another key for v1", otherV1, "data key v1 differs"},
		{"v1 dropped while v1 records exist", testKeyring(t, 2), "sealed under data key v1"},
		{"nil", nil, "nil keyring"},
	}
	check := func(t *testing.T, step string) {
		for _, tt := range refused {
			if err := v.SetKeyring(tt.keys); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("%s: SetKeyring with %s: %v, want an error containing %q", step, tt.name, err, tt.wantErr)
			}
		}
		if got := mustGet(t, v, rotateToken(3).Token); got.PAN != rotateToken(3).PAN {
			t.Fatalf("%s: token detokenizes to %s after refusals", step, got.PAN)
		}
	}
	check(t, "under v1")
	if cur := v.Keys().CurrentVersion(); cur != 1 {
		t.Fatalf("current version %d after refusals, want 1", cur)
	}
	if err := v.SetKeyring(writeTestKeyFile(t, keyFile, 1, 2)); err != nil {
		t.Fatal(err)
	}
	check(t, "v2 set, not rekeyed") // v1 records are still there
	v.Close()
	v = nil
	if _, err := Open(dir, testKeyring(t, 2)); err == nil || !strings.Contains(err.Error(), "sealed under data key v1") {
		t.Fatalf("Open without v1 while v1 records exist: %v, want a refusal", err)
	}
}

// TestVersionListMigrates checks that a vault without the stored list of
// versions in use (written before it existed) counts its records at Open.
func TestVersionListMigrates(t *testing.T) {
	v, dir, _ := fillVault(t, 5)
	defer func() { closeIfOpen(v) }()
	if err := v.db.Delete([]byte(keyVersionsKey), nil); err != nil {
		t.Fatal(err)
	}
	v.Close()
	v = nil
	if _, err := Open(dir, testKeyring(t, 2)); err == nil || !strings.Contains(err.Error(), "sealed under data key v1") {
		t.Fatalf("Open without v1 and without a version list: %v, want a refusal naming v1", err)
	}
	v = openTest(t, dir, testKeyring(t, 1))
	if got, found, err := v.readKeyVersions(); err != nil || !found || !reflect.DeepEqual(got, []uint16{1}) {
		t.Fatalf("version list after migration = %v, %v, %v; want [1]", got, found, err)
	}
}

// TestRekeyResumes cancels a Rekey part-way, reopens the vault as after a
// crash, and checks that a second Rekey finishes the job.
func TestRekeyResumes(t *testing.T) {
	v, dir, keyFile := fillVault(t, rotateTokens)
	defer func() { closeIfOpen(v) }()
	keys := writeTestKeyFile(t, keyFile, 1, 2)
	if err := v.SetKeyring(keys); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Rekey(context.Background(), 0, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Rekey with batch 0: %v, want ErrInvalid", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	first, err := v.Rekey(ctx, 100, func(done, _ int) {
		if _, err := v.Rekey(context.Background(), 100, nil); !errors.Is(err, ErrRekeyRunning) {
			t.Errorf("a second Rekey while one runs: %v, want ErrRekeyRunning", err)
		}
		if done >= 300 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || first != 300 {
		t.Fatalf("cancelled Rekey = %d, %v; want 300, context.Canceled", first, err)
	}
	assertCounts(t, v, map[uint16]int{1: rotateTokens - first, 2: first})
	v.Close()
	v = nil
	v = openTest(t, dir, keys)
	for i := range rotateTokens {
		if got := mustGet(t, v, rotateToken(i).Token); got.PAN != rotateToken(i).PAN {
			t.Fatalf("token %d detokenizes to %s with versions mixed", i, got.PAN)
		}
	}
	second, err := v.Rekey(context.Background(), RekeyBatchDefault, nil)
	if err != nil || first+second != rotateTokens {
		t.Fatalf("resumed Rekey = %d, %v; want %d", second, err, rotateTokens-first)
	}
	assertCounts(t, v, map[uint16]int{2: rotateTokens})
	if again, err := v.Rekey(context.Background(), RekeyBatchDefault, nil); again != 0 || err != nil {
		t.Fatalf("Rekey with nothing left = %d, %v; want 0, nil", again, err)
	}
}

// TestRekeyFollowsANewKeyring swaps in v3 while a rekey to v2 runs: the
// records already moved to v2 are moved again, in a second pass.
func TestRekeyFollowsANewKeyring(t *testing.T) {
	v, _, keyFile := fillVault(t, 300)
	defer v.Close()
	if err := v.SetKeyring(writeTestKeyFile(t, keyFile, 1, 2)); err != nil {
		t.Fatal(err)
	}
	v3 := writeTestKeyFile(t, keyFile, 1, 2, 3)
	var once sync.Once
	done, err := v.Rekey(context.Background(), 50, func(done, _ int) {
		if done >= 100 {
			once.Do(func() {
				if err := v.SetKeyring(v3); err != nil {
					t.Error(err)
				}
			})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if done != 400 {
		t.Fatalf("Rekey rewrote %d records, want 400: 100 to v2 and then to v3, 200 to v3", done)
	}
	assertCounts(t, v, map[uint16]int{3: 300})
	if err := v.SetKeyring(testKeyring(t, 3)); err != nil {
		t.Fatalf("SetKeyring with v3 only after the rekey: %v", err)
	}
}

// TestCloseStopsRekey closes the vault while a rekey runs: Close cancels it
// and waits, so no batch touches the closed store.
func TestCloseStopsRekey(t *testing.T) {
	v, _, keyFile := fillVault(t, 300)
	if err := v.SetKeyring(writeTestKeyFile(t, keyFile, 1, 2)); err != nil {
		t.Fatal(err)
	}
	closing := func() bool {
		v.rekey.mu.Lock()
		defer v.rekey.mu.Unlock()
		return v.rekey.closed
	}
	started := make(chan struct{})
	result := make(chan error, 1)
	go func() {
		var once sync.Once
		_, err := v.Rekey(context.Background(), 10, func(done, _ int) {
			if done == 0 {
				return
			}
			// Hold the rekey between batches until Close has begun, so
			// it cannot finish first on a fast disk.
			once.Do(func() { close(started) })
			for !closing() {
				time.Sleep(time.Millisecond)
			}
		})
		result <- err
	}()
	<-started
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-result; !errors.Is(err, context.Canceled) {
		t.Fatalf("Rekey stopped by Close: %v, want context.Canceled", err)
	}
	if _, err := v.Rekey(context.Background(), 10, nil); err == nil {
		t.Fatal("Rekey after Close started")
	}
}

func TestDecodeKeyVersions(t *testing.T) {
	good := encodeKeyVersions([]uint16{1, 2, 9})
	if got, err := decodeKeyVersions(good); err != nil || !reflect.DeepEqual(got, []uint16{1, 2, 9}) {
		t.Fatalf("round trip = %v, %v", got, err)
	}
	for name, b := range map[string][]byte{
		"empty":        encodeKeyVersions(nil),
		"odd length":   good[:len(good)-1],
		"bad CRC":      append(good[:len(good)-1:len(good)-1], good[len(good)-1]^1),
		"not rising":   encodeKeyVersions([]uint16{2, 1}),
		"duplicate":    encodeKeyVersions([]uint16{2, 2}),
		"version zero": encodeKeyVersions([]uint16{0, 1}),
	} {
		if _, err := decodeKeyVersions(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}
