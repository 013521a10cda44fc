package wallet

import (
	"path/filepath"
	"sync"
	"testing"
)

func TestCountersSharedByCopiesAndSaved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.json")
	f := File{Cards: []Card{{Label: "a", Token: "6299900000000001", Key: "000102030405060708090a0b0c0d0e0f", ATC: 41}}}
	if err := Save(path, f); err != nil {
		t.Fatal(err)
	}
	w, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	c1, _ := w.Card("a")
	c2, _ := w.Card("a")
	var wg sync.WaitGroup
	got := make(chan uint32, 100)
	for i := range 100 {
		c := []Card{c1, c2}[i%2]
		wg.Go(func() { got <- c.NextATC() })
	}
	wg.Wait()
	close(got)
	seen := map[uint32]bool{}
	for atc := range got {
		if seen[atc] || atc < 42 || atc > 141 {
			t.Fatalf("ATC %d handed out twice or outside 42..141", atc)
		}
		seen[atc] = true
	}
	if err := Save(path, w); err != nil {
		t.Fatal(err)
	}
	if w.Cards[0].ATC != 41 {
		t.Fatal("Save changed the caller's card")
	}
	back, _ := Load(path)
	if back.Cards[0].ATC != 141 {
		t.Fatalf("saved ATC %d, want 141", back.Cards[0].ATC)
	}
	if c, _ := back.Card("a"); c.NextATC() != 142 {
		t.Fatal("reloaded counter does not continue")
	}
	key, err := back.Cards[0].TokenKey()
	if err != nil || len(key) != 16 || key[15] != 0x0f {
		t.Fatalf("TokenKey %x, %v", key, err)
	}
}

func TestTokenKeyAndCounterMisuse(t *testing.T) {
	if k, err := (Card{}).TokenKey(); k != nil || err != nil {
		t.Fatalf("card without key: %x, %v", k, err)
	}
	for _, bad := range []string{"00", "zz0102030405060708090a0b0c0d0e0f", "000102030405060708090a0b0c0d0e0f00"} {
		if _, err := (Card{Key: bad}).TokenKey(); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("NextATC on a card not read by Load did not panic")
		}
	}()
	Card{Label: "x"}.NextATC()
}
