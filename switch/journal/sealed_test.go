package journal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSealDay(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, filepath.Join(dir, "journal"))
	var want []Entry
	for _, stan := range []string{"000001", "000002", "000003"} {
		e := newEntry("TERM0001", stan)
		e.NodeID = "node-1"
		if err := j.Append(e); err != nil {
			t.Fatal(err)
		}
		want = append(want, *e)
	}
	day := want[0].BusinessDay
	path, err := j.SealDay(day, "node-1", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !j.IsSealed(day) {
		t.Fatal("day not marked sealed")
	}
	late := newEntry("TERM0001", "000009")
	late.NodeID = "node-1"
	if err := j.Append(late); !errors.Is(err, ErrDaySealed) {
		t.Fatalf("append to a sealed day: %v, want ErrDaySealed", err)
	}
	var got []Entry
	node, gotDay, err := ReadSealed(path, func(e Entry) error { got = append(got, e); return nil })
	if err != nil || node != "node-1" || gotDay != day || len(got) != 3 {
		t.Fatalf("ReadSealed: %s %s %d entries, %v", node, gotDay, len(got), err)
	}
	for i := range want {
		if !entriesEqual(got[i], want[i]) {
			t.Fatalf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	first, _ := os.ReadFile(path)
	if _, err := j.SealDay(day, "node-1", dir); err != nil {
		t.Fatal(err)
	}
	again, _ := os.ReadFile(path)
	if string(first) != string(again) {
		t.Fatal("sealing again changed the file")
	}
	j.Close()
	j = openTest(t, filepath.Join(dir, "journal"))
	defer j.Close()
	if !j.IsSealed(day) {
		t.Fatal("sealed mark lost on reopen")
	}
	bad := filepath.Join(dir, "bad.sealed")
	for i := range first {
		damaged := append([]byte(nil), first...)
		damaged[i] ^= 0x01
		os.WriteFile(bad, damaged, 0o600)
		if _, _, err := ReadSealed(bad, func(Entry) error { return nil }); err == nil {
			t.Fatalf("flipping byte %d went unnoticed", i)
		}
	}
	os.WriteFile(bad, first[:len(first)-1], 0o600)
	if _, _, err := ReadSealed(bad, func(Entry) error { return nil }); err == nil {
		t.Fatal("a truncated file was accepted")
	}
}

// TestCloseDayEarly: a day closed before its cut-off (switchd -dev's
// close-day) is sealed with what it holds, entries from then on belong to
// the next day, also after a restart, and the empty day seals as a file
// of zero records.
func TestCloseDayEarly(t *testing.T) {
	dir, sealedDir := t.TempDir(), t.TempDir()
	j := openTest(t, dir)
	before := newEntry("T1", "000001")
	if err := j.Append(before); err != nil {
		t.Fatal(err)
	}
	day, path, err := j.CloseDay(before.Time.Add(time.Second), before.NodeID, sealedDir)
	if err != nil || day != before.BusinessDay {
		t.Fatalf("CloseDay: %s %v, want day %s", day, err, before.BusinessDay)
	}
	count := 0
	if _, _, err := ReadSealed(path, func(Entry) error { count++; return nil }); err != nil || count != 1 {
		t.Fatalf("sealed file: %d entries, %v; want 1", count, err)
	}
	after := newEntry("T1", "000002")
	if err := j.Append(after); err != nil || after.BusinessDay != NextDay(day) {
		t.Fatalf("an entry after the close: day %s, %v; want %s", after.BusinessDay, err, NextDay(day))
	}
	j.Close()
	j = openTest(t, dir)
	defer j.Close()
	if got := j.BusinessDayOf(before.Time); got != NextDay(day) || !j.IsSealed(day) {
		t.Fatalf("after reopening: day of the same instant %s, sealed %v; want %s, sealed", got, j.IsSealed(day), NextDay(day))
	}
	empty, err := j.SealDay(NextDay(NextDay(day)), "node-1", sealedDir)
	count = 0
	if _, _, rerr := ReadSealed(empty, func(Entry) error { count++; return nil }); err != nil || rerr != nil || count != 0 {
		t.Fatalf("an empty day: %v %v, %d records; want a sealed file of none", err, rerr, count)
	}
}
