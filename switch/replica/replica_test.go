package replica_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/tapswitch/tapswitch/switch/replica"
)

// TestApply: a batch's representation, sets, a delete and a range delete,
// applied to another database gives the same records there, with the
// applied position; a position survives reopening.
func TestApply(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if seq, err := replica.Applied(db); err != nil || seq != 0 {
		t.Fatalf("new store: applied %d, %v", seq, err)
	}
	src, err := pebble.Open(t.TempDir(), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	b := src.NewBatch()
	for _, k := range []string{"a/1", "a/2", "b/1", "c/1"} {
		b.Set([]byte(k), []byte("v"+k), nil)
	}
	b.Delete([]byte("c/1"), nil)
	if err := replica.Apply(db, 7, b.Repr()); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = src.NewBatch()
	b.DeleteRange([]byte("a/"), []byte("a0"), nil)
	if err := replica.Apply(db, 9, b.Repr()); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if db, err = pebble.Open(dir, &pebble.Options{}); err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if seq, err := replica.Applied(db); err != nil || seq != 9 {
		t.Fatalf("reopened: applied %d, %v; want 9", seq, err)
	}
	for key, want := range map[string]string{"a/1": "", "a/2": "", "b/1": "vb/1", "c/1": ""} {
		val, closer, err := db.Get([]byte(key))
		got := ""
		if err == nil {
			got = string(val)
			closer.Close()
		}
		if got != want {
			t.Errorf("%s: %q, want %q", key, got, want)
		}
	}
}
