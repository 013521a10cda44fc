package journal

import (
	"errors"
	"testing"
)

// A top-up's record is written alone (before its first leg) or in the
// batch of the entry that decides it, survives a reopen, and nothing of a
// refused append reaches it.
func TestTopUpRecords(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	if err := j.PutTopUp(TopUpRecord{ID: "a1", Value: []byte("paying")}); err != nil {
		t.Fatal(err)
	}
	e := sampleEntry("TOPU0010", "000001")
	if err := j.AppendWith(e, &Change{TopUp: &TopUpRecord{ID: "a1", Value: []byte("loaded")}}); err != nil {
		t.Fatal(err)
	}
	dup := sampleEntry("TOPU0010", "000001")
	if err := j.AppendWith(dup, &Change{TopUp: &TopUpRecord{ID: "a1", Value: []byte("undone")}}); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if err := j.PutTopUp(TopUpRecord{ID: "b2", Value: []byte("paying")}); err != nil {
		t.Fatal(err)
	}
	if err := j.PutTopUp(TopUpRecord{ID: "", Value: []byte("x")}); err == nil {
		t.Fatal("empty ID written")
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = openTest(t, dir)
	v, found, err := j.TopUp("a1")
	if err != nil || !found || string(v) != "loaded" {
		t.Fatalf("a1 = %q %v %v, want loaded", v, found, err)
	}
	var ids []string
	if err := j.EachTopUp(func(r TopUpRecord) error { ids = append(ids, r.ID+"="+string(r.Value)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids[0] != "a1=loaded" || ids[1] != "b2=paying" {
		t.Fatalf("records %v", ids)
	}
	if _, found, _ := j.TopUp("zz"); found {
		t.Fatal("a missing top-up found")
	}
}
