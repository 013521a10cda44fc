package sms

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
)

func TestOutboxAppendsAndReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), OutboxFileName)
	o := NewOutbox(path)
	now := time.Date(2026, 3, 15, 10, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			text := "tapswitch: " + []string{"111111", "222222"}[i%2] + " is your code"
			if err := o.Send(context.Background(), Message{Time: now, To: "13812345634", Ref: []string{"a", "b"}[i%2], Text: text}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	msgs, err := ReadOutbox(path)
	if err != nil || len(msgs) != 20 {
		t.Fatalf("ReadOutbox: %d messages, %v", len(msgs), err)
	}
	m, err := Latest(path, "b")
	if err != nil || m.ToMasked != "1**-****-**34" || m.To != "" || !m.Time.Equal(now) {
		t.Fatalf("Latest: %+v, %v", m, err)
	}
	if code, err := Code(m.Text); err != nil || code != "222222" {
		t.Fatalf("Code: %q, %v", code, err)
	}
	if _, err := Latest(path, "c"); err == nil {
		t.Fatal("Latest found a message for a ref never sent")
	}
	raw, _ := os.ReadFile(path)
	if strings.Contains(string(raw), "3812345") {
		t.Fatal("the outbox holds the number in clear")
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("outbox mode %v, %v; want 0600", info.Mode(), err)
	}
}

func TestOutboxSkipsATornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), OutboxFileName)
	o := NewOutbox(path)
	o.Send(context.Background(), Message{To: "13812345634", Ref: "r1", Text: "123456"})
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"to":"a","ref":"r2","te`)
	f.Close()
	msgs, err := ReadOutbox(path)
	if err != nil || len(msgs) != 1 || msgs[0].Ref != "r1" {
		t.Fatalf("%+v, %v", msgs, err)
	}
}

func TestOutboxRollsOverWhenFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), OutboxFileName)
	o := NewOutbox(path)
	if err := o.Send(context.Background(), Message{To: "13812345634", Ref: "old", Text: "111111"}); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, outboxBytesMax); err != nil { // pad to the bound
		t.Fatal(err)
	}
	if err := o.Send(context.Background(), Message{To: "13812345634", Ref: "new", Text: "222222"}); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Size() > lineBytesMax {
		t.Fatalf("outbox not rolled over: %v, %v", info.Size(), err)
	}
	if _, err := os.Stat(path + ".1"); err != nil {
		t.Fatal(err)
	}
	if m, err := Latest(path, "new"); err != nil || m.Text != "222222" {
		t.Fatalf("%+v, %v", m, err)
	}
}

func TestSendRefusesAnOversizeMessage(t *testing.T) {
	o := NewOutbox(filepath.Join(t.TempDir(), OutboxFileName))
	if err := o.Send(context.Background(), Message{Text: strings.Repeat("x", lineBytesMax)}); err == nil {
		t.Fatal("an oversize message was written")
	}
}

func TestCode(t *testing.T) {
	for text, want := range map[string]string{
		"tapswitch: 042137 is your code to add card 4567": "042137",
		"123456":                    "123456",
		"card 1234567 code 654321.": "654321",
		"no code here 12345":        "",
	} {
		got, err := Code(text)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("Code(%q) = %q, %v; want %q", text, got, err, want)
		}
	}
}

func TestOutboxSendsOnlyToAPhoneNumber(t *testing.T) {
	path := filepath.Join(t.TempDir(), OutboxFileName)
	o := NewOutbox(path)
	for _, to := range []string{"", "alice", "1381234563"} {
		if err := o.Send(context.Background(), Message{To: iso8583.Phone(to), Ref: "r", Text: "123456"}); err == nil {
			t.Errorf("sent to %q", to)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("a refused message reached the outbox: %v", err)
	}
}
