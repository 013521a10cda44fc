package vault

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tapswitch/tapswitch/iso8583"
)

func luhn(body string) string { return body + string(iso8583.LuhnCheckDigit(body)) }

// sampleToken is token i on device dev, for card i.
func sampleToken(i int, dev string) Token {
	return Token{
		Token:         iso8583.PAN(luhn(fmt.Sprintf("490000%09d", i))),
		PAN:           iso8583.PAN(luhn(fmt.Sprintf("622588%09d", i))),
		CardExpiry:    "2812",
		TokenExpiry:   "2706",
		Status:        StatusActive,
		DeviceID:      dev,
		WalletAccount: "mi-account-77",
		RequestorID:   "50110030273",
		Domain:        Domain{ContactlessOnly: true},
		CreatedAt:     time.Date(2026, 3, 14, 9, 26, 53, 589793238, time.UTC),
	}
}

func openTest(t testing.TB, dir string, keys *Keyring) *Vault {
	t.Helper()
	v, err := Open(dir, keys)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func newTestVault(t testing.TB) *Vault {
	t.Helper()
	v := openTest(t, t.TempDir(), testKeyring(t, 1))
	t.Cleanup(func() { v.Close() })
	return v
}

func mustPut(t testing.TB, v *Vault, tok Token) {
	t.Helper()
	if err := v.Put(tok); err != nil {
		t.Fatal(err)
	}
}

func mustGet(t testing.TB, v *Vault, token iso8583.PAN) Token {
	t.Helper()
	got, err := v.Get(token.Clear())
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestPutGet(t *testing.T) {
	v := newTestVault(t)
	want := sampleToken(1, "device-a")
	mustPut(t, v, want)
	if got := mustGet(t, v, want.Token); !reflect.DeepEqual(got, want) {
		t.Fatalf("Get = %+v\nwant  %+v", got, want)
	}
	// The zero time and no restrictions survive too; a replace takes effect.
	want.CreatedAt, want.Domain, want.Status = time.Time{}, Domain{}, StatusSuspended
	mustPut(t, v, want)
	if got := mustGet(t, v, want.Token); !reflect.DeepEqual(got, want) {
		t.Fatalf("Get after replace = %+v\nwant  %+v", got, want)
	}
}

func TestGetUnknown(t *testing.T) {
	v := newTestVault(t)
	for _, token := range []string{luhn("490000000000001"), "", "12345678901234567890123"} {
		if _, err := v.Get(token); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) error %v, want ErrNotFound", token, err)
		}
	}
}

func TestPutValidation(t *testing.T) {
	v := newTestVault(t)
	tests := []struct {
		name   string
		mutate func(*Token)
	}{
		{"token not Luhn-valid", func(t *Token) { t.Token = "4900000000000013" }},
		{"token not digits", func(t *Token) { t.Token = "49000000000000a4" }},
		{"token too short", func(t *Token) { t.Token = iso8583.PAN(luhn("4900000000")) }},
		{"PAN not Luhn-valid", func(t *Token) { t.PAN = "6225880000000011" }},
		{"token equals PAN", func(t *Token) { t.Token = t.PAN }},
		{"card expiry month 13", func(t *Token) { t.CardExpiry = "2813" }},
		{"card expiry month 00", func(t *Token) { t.CardExpiry = "2800" }},
		{"token expiry 5 digits", func(t *Token) { t.TokenExpiry = "27061" }},
		{"token expiry not digits", func(t *Token) { t.TokenExpiry = "27-6" }},
		{"status empty", func(t *Token) { t.Status = "" }},
		{"status unknown", func(t *Token) { t.Status = "lost" }},
		{"device empty", func(t *Token) { t.DeviceID = "" }},
		{"device with slash", func(t *Token) { t.DeviceID = "a/b" }},
		{"device too long", func(t *Token) { t.DeviceID = string(bytes.Repeat([]byte("d"), 65)) }},
		{"wallet empty", func(t *Token) { t.WalletAccount = "" }},
		{"wallet control byte", func(t *Token) { t.WalletAccount = "a\nb" }},
		{"requestor 10 digits", func(t *Token) { t.RequestorID = "5011003027" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := sampleToken(1, "device-a")
			tt.mutate(&tok)
			err := v.Put(tok)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Put error %v, want ErrInvalid", err)
			}
			if bytes.Contains([]byte(err.Error()), []byte(sampleToken(1, "").PAN.Clear())) {
				t.Fatalf("error %q shows the clear PAN", err)
			}
		})
	}
	if got, _ := v.TokensForDevice("device-a"); len(got) != 0 {
		t.Fatalf("rejected Puts left index entries %v", got)
	}
}

// TestNumbersApart checks that tokens and PANs stay disjoint across records.
func TestNumbersApart(t *testing.T) {
	v := newTestVault(t)
	a := sampleToken(1, "device-a")
	mustPut(t, v, a)
	b := sampleToken(2, "device-a")
	b.Token = a.PAN
	if err := v.Put(b); !errors.Is(err, ErrInvalid) {
		t.Fatalf("token equal to another card's PAN: %v, want ErrInvalid", err)
	}
	c := sampleToken(3, "device-a")
	c.PAN = a.Token
	if err := v.Put(c); !errors.Is(err, ErrInvalid) {
		t.Fatalf("PAN equal to another token: %v, want ErrInvalid", err)
	}
}

func TestIndexes(t *testing.T) {
	v := newTestVault(t)
	a1, a2, b3 := sampleToken(1, "device-a"), sampleToken(2, "device-a"), sampleToken(3, "device-b")
	a2.PAN = a1.PAN // one card on a phone twice, e.g. two wallet apps
	for _, tok := range []Token{a1, a2, b3} {
		mustPut(t, v, tok)
	}
	assertTokens(t, v.TokensForPAN, a1.PAN.Clear(), a1.Token, a2.Token)
	assertTokens(t, v.TokensForPAN, b3.PAN.Clear(), b3.Token)
	assertTokens(t, v.TokensForPAN, luhn("622588999999999"))
	assertTokens(t, v.TokensForDevice, "device-a", a1.Token, a2.Token)
	assertTokens(t, v.TokensForDevice, "device-b", b3.Token)
	assertTokens(t, v.TokensForDevice, "device" /* a prefix of both, matches neither */)

	// Replacing a2 with another card on another device moves its entries.
	a2.PAN, a2.DeviceID = b3.PAN, "device-b"
	mustPut(t, v, a2)
	assertTokens(t, v.TokensForPAN, a1.PAN.Clear(), a1.Token)
	assertTokens(t, v.TokensForPAN, b3.PAN.Clear(), a2.Token, b3.Token)
	assertTokens(t, v.TokensForDevice, "device-a", a1.Token)
	assertTokens(t, v.TokensForDevice, "device-b", a2.Token, b3.Token)

	if _, err := v.TokensForDevice("a/b"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("TokensForDevice with '/': %v, want ErrInvalid", err)
	}
}

func assertTokens(t *testing.T, lookup func(string) ([]string, error), key string, want ...iso8583.PAN) {
	t.Helper()
	got, err := lookup(key)
	if err != nil {
		t.Fatal(err)
	}
	wantS := make([]string, 0, len(want))
	for _, w := range want {
		wantS = append(wantS, w.Clear())
	}
	slices.Sort(got)
	slices.Sort(wantS)
	if !slices.Equal(got, wantS) {
		t.Fatalf("look-up of %s = %v, want %v", iso8583.MaskPAN(key), got, wantS)
	}
}

func TestSetStatus(t *testing.T) {
	v := newTestVault(t)
	tok := sampleToken(1, "device-a")
	mustPut(t, v, tok)
	if err := v.SetStatus(luhn("490000999999999"), StatusSuspended); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetStatus unknown: %v, want ErrNotFound", err)
	}
	if err := v.SetStatus(tok.Token.Clear(), "lost"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SetStatus bad status: %v, want ErrInvalid", err)
	}
	for _, s := range []Status{StatusSuspended, StatusSuspended, StatusActive, StatusDeleted} {
		if err := v.SetStatus(tok.Token.Clear(), s); err != nil {
			t.Fatal(err)
		}
		got := mustGet(t, v, tok.Token)
		if got.Status != s {
			t.Fatalf("status %s after SetStatus(%s)", got.Status, s)
		}
		if got.PAN != tok.PAN || got.DeviceID != tok.DeviceID {
			t.Fatalf("SetStatus changed other fields: %+v", got)
		}
	}
	if err := v.SetStatus(tok.Token.Clear(), StatusActive); !errors.Is(err, ErrInvalid) {
		t.Fatalf("reactivating a deleted token: %v, want ErrInvalid", err)
	}
	if err := v.Put(tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("replacing a deleted token: %v, want ErrInvalid", err)
	}
}

func TestSuspendDevice(t *testing.T) {
	v := newTestVault(t)
	statuses := []Status{StatusActive, StatusActive, StatusSuspended, StatusDeleted}
	for i, s := range statuses {
		tok := sampleToken(i, "lost-phone")
		tok.Status = s
		mustPut(t, v, tok)
	}
	other := sampleToken(9, "other-phone")
	mustPut(t, v, other)

	n, err := v.SuspendDevice("lost-phone")
	if err != nil || n != 2 {
		t.Fatalf("SuspendDevice = %d, %v, want 2", n, err)
	}
	for i, was := range statuses {
		want := StatusSuspended
		if was == StatusDeleted {
			want = StatusDeleted
		}
		if got := mustGet(t, v, sampleToken(i, "").Token).Status; got != want {
			t.Errorf("token %d: status %s, want %s", i, got, want)
		}
	}
	if got := mustGet(t, v, other.Token).Status; got != StatusActive {
		t.Fatalf("token on another device: %s", got)
	}
	if n, err := v.SuspendDevice("lost-phone"); err != nil || n != 0 {
		t.Fatalf("second SuspendDevice = %d, %v, want 0", n, err)
	}
	if n, err := v.SuspendDevice("never-seen"); err != nil || n != 0 {
		t.Fatalf("SuspendDevice of unknown device = %d, %v", n, err)
	}
}

func TestReopen(t *testing.T) {
	dir, keys := t.TempDir(), testKeyring(t, 1)
	v := openTest(t, dir, keys)
	want := sampleToken(1, "device-a")
	mustPut(t, v, want)
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v = openTest(t, dir, keys)
	defer v.Close()
	if got := mustGet(t, v, want.Token); !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopen Get = %+v", got)
	}
	assertTokens(t, v.TokensForPAN, want.PAN.Clear(), want.Token)
}

// TestOpenChecksKeyring checks the start-up probe: a wrong key file is
// refused, and a rotated one opens records sealed before the rotation.
func TestOpenChecksKeyring(t *testing.T) {
	dir := t.TempDir()
	v := openTest(t, dir, testKeyring(t, 1))
	old := sampleToken(1, "device-a")
	mustPut(t, v, old)
	v.Close()

	otherIndex, _ := ParseKeyring([]byte("index: " + testKey(0x11) + "\nv1: " + testKey(1) + "\ntoken-master: " + testKey(0x7a)))
	otherData, _ := ParseKeyring([]byte("index: " + testKey(0xee) + "\nv1: " + testKey(0x22) + "\ntoken-master: " + testKey(0x7a)))
	otherMaster, _ := ParseKeyring([]byte("index: " + testKey(0xee) + "\nv1: " + testKey(1) + "\ntoken-master: " + testKey(0x7b)))
	for name, k := range map[string]*Keyring{"other index key": otherIndex, "other data key": otherData,
		"other token master": otherMaster} {
		if v, err := Open(dir, k); err == nil {
			v.Close()
			t.Fatalf("%s: Open succeeded", name)
		}
	}

	v = openTest(t, dir, testKeyring(t, 1, 2))
	defer v.Close()
	if got := mustGet(t, v, old.Token); got.PAN != old.PAN {
		t.Fatalf("v1 record under rotated keyring: PAN %s", got.PAN)
	}
	fresh := sampleToken(2, "device-a")
	mustPut(t, v, fresh)
	r, _, _ := v.load(fresh.Token.Clear())
	if r.sealedPAN[1] != 2 {
		t.Fatalf("new record sealed under v%d, want v2", r.sealedPAN[1])
	}
}

func TestCorruptRecord(t *testing.T) {
	v := newTestVault(t)
	a, b := sampleToken(1, "device-a"), sampleToken(2, "device-a")
	mustPut(t, v, a)
	mustPut(t, v, b)
	ra, _, _ := v.load(a.Token.Clear())
	rb, _, _ := v.load(b.Token.Clear())

	// A ciphertext moved to another token's record, with a valid CRC.
	rb.sealedPAN = ra.sealedPAN
	setRaw(t, v, b.Token, rb.encode())
	if _, err := v.Get(b.Token.Clear()); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("moved ciphertext: %v, want ErrCorrupt", err)
	}
	// Any flipped byte fails the CRC or a field rule.
	raw := ra.encode()
	for i := range raw {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x04
		setRaw(t, v, a.Token, bad)
		if _, err := v.Get(a.Token.Clear()); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d flipped: %v, want ErrCorrupt", i, err)
		}
	}
}

func setRaw(t *testing.T, v *Vault, token iso8583.PAN, val []byte) {
	t.Helper()
	if err := v.db.Set(recordKey(token.Clear()), val, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// TestNoClearPANOnDisk reads every byte Pebble wrote and looks for the PANs.
// The tokens must be found, or the scan proves nothing.
func TestNoClearPANOnDisk(t *testing.T) {
	dir := t.TempDir()
	v := openTest(t, dir, testKeyring(t, 1))
	var toks []Token
	for i := range 50 {
		tok := sampleToken(i, fmt.Sprintf("device-%d", i%7))
		toks = append(toks, tok)
		mustPut(t, v, tok)
	}
	if _, err := v.SuspendDevice("device-3"); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	var disk []byte
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		disk = append(disk, data...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		if !bytes.Contains(disk, []byte(tok.Token.Clear())) {
			t.Fatalf("token %s not found on disk: the scan is not seeing the data", tok.Token)
		}
		if bytes.Contains(disk, []byte(tok.PAN.Clear())) {
			t.Fatalf("clear PAN %s found on disk", tok.PAN)
		}
	}
}

func TestConcurrentGet(t *testing.T) {
	v := newTestVault(t)
	const tokens = 20
	for i := range tokens {
		mustPut(t, v, sampleToken(i, "device-a"))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errs := make(chan error, 16)
	for g := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				want := sampleToken((g+i)%tokens, "")
				got, err := v.Get(want.Token.Clear())
				if err == nil && got.PAN != want.PAN {
					err = fmt.Errorf("token %s: PAN %s, want %s", want.Token, got.PAN, want.PAN)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	statuses := []Status{StatusActive, StatusSuspended}
	for i := range 60 {
		tok := sampleToken(i%tokens, "device-a")
		tok.Status = statuses[i%2]
		if i%3 == 0 {
			tok.DeviceID = "device-b"
		}
		if err := v.Put(tok); err != nil {
			t.Fatal(err)
		}
		if err := v.SetStatus(tok.Token.Clear(), statuses[(i+1)%2]); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := v.SuspendDevice("device-b"); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkGet(b *testing.B) {
	v := newTestVault(b)
	const tokens = 1000
	keys := make([]string, tokens)
	for i := range tokens {
		tok := sampleToken(i, fmt.Sprintf("device-%d", i%100))
		mustPut(b, v, tok)
		keys[i] = tok.Token.Clear()
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := v.Get(keys[i%tokens]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
