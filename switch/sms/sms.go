// Package sms sends the network's text messages to cardholders: today the
// one-time codes that confirm a card binding. Sender is the gateway
// interface; Outbox is the default gateway, which appends each message as
// one JSON line to a file (DATA/sms-outbox.log) instead of sending it, so a
// developer running switchd -dev reads the codes there (wallet dev-code
// does). A deployment plugs in its SMS provider's client as a Sender.
//
// A message goes to a phone number (Message.To), the one the card's issuer
// has on file for its cardholder, never to a wallet account: the code
// confirms that the cardholder, not whoever asks, wants the card bound.
// The number reaches the Sender in clear, since a gateway must dial it;
// iso8583.Phone masks it everywhere else.
//
// The outbox holds codes in clear: it stands for the cardholder's phone.
// Nothing else may write a code anywhere: the token service logs that a
// code was sent, never the code. The outbox shows the number masked, and
// names the binding in "ref" so a reader finds the message for its request.
//
// Outbox line (one JSON object, '\n'-terminated):
//
//	{"time":"2026-03-15T10:00:00Z","to":"1**-****-**34","ref":"6f1c…","text":"…"}
//
// The file is bounded: past outboxBytesMax it is renamed to
// sms-outbox.log.1 (replacing the previous one) and a new file is begun.
package sms

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
)

// OutboxFileName is the outbox's name inside the switch's data directory.
const OutboxFileName = "sms-outbox.log"

const (
	// outboxBytesMax bounds the outbox file before it rolls over.
	outboxBytesMax = 8 << 20
	// lineBytesMax bounds one outbox line, written or read.
	lineBytesMax = 4096
)

// Message is one text message.
type Message struct {
	Time time.Time `json:"time"`
	// To is the recipient's mobile number, for the gateway alone; it is
	// never written to the outbox (ReadOutbox leaves it empty).
	To iso8583.Phone `json:"-"`
	// ToMasked is To as the outbox shows it, "1**-****-**34"; Outbox.Send
	// fills it in.
	ToMasked string `json:"to"`
	// Ref names what the message is about (a binding ID), so a reader of
	// the outbox finds the message for its request.
	Ref  string `json:"ref"`
	Text string `json:"text"`
}

// Sender delivers a message, or fails without having delivered it.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// Outbox is the file gateway. It is safe for concurrent use.
type Outbox struct {
	path string
	mu   sync.Mutex
}

// NewOutbox returns an outbox appending to path (created on first use,
// mode 0600).
func NewOutbox(path string) *Outbox { return &Outbox{path: path} }

// OutboxPath is where the outbox of a switch with data directory dir is.
func OutboxPath(dir string) string { return filepath.Join(dir, OutboxFileName) }

// Path is the outbox file.
func (o *Outbox) Path() string { return o.path }

// Send appends m as one line and syncs it, so a code the API said was sent
// is there to read after a crash.
func (o *Outbox) Send(_ context.Context, m Message) error {
	if !m.To.Valid() {
		return errors.New("sms outbox: the recipient is not an 11-digit mobile number")
	}
	m.ToMasked = m.To.Masked()
	line, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("sms outbox: %w", err)
	}
	line = append(line, '\n')
	if len(line) > lineBytesMax {
		return fmt.Errorf("sms outbox: message of %d bytes exceeds %d", len(line), lineBytesMax)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if err := o.rollIfFull(len(line)); err != nil {
		return err
	}
	f, err := os.OpenFile(o.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("sms outbox: %w", err)
	}
	_, err = f.Write(line)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sms outbox %s: %w", o.path, err)
	}
	return nil
}

func (o *Outbox) rollIfFull(adding int) error {
	info, err := os.Stat(o.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sms outbox: %w", err)
	}
	if info.Size()+int64(adding) <= outboxBytesMax {
		return nil
	}
	if err := os.Rename(o.path, o.path+".1"); err != nil {
		return fmt.Errorf("sms outbox: roll over: %w", err)
	}
	return nil
}

// ReadOutbox returns the messages in an outbox file, oldest first. A line
// that is not a message (a torn last line after a crash) is skipped.
func ReadOutbox(path string) ([]Message, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("sms outbox: %w", err)
	}
	defer f.Close()
	return readMessages(f)
}

func readMessages(r io.Reader) ([]Message, error) {
	sc := bufio.NewScanner(io.LimitReader(r, outboxBytesMax+lineBytesMax))
	sc.Buffer(make([]byte, 0, 512), lineBytesMax)
	var out []Message
	for sc.Scan() {
		var m Message
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("sms outbox: %w", err)
	}
	return out, nil
}

// Latest returns the newest message in the outbox at path with the given
// ref, looking in the rolled-over file too.
func Latest(path, ref string) (Message, error) {
	for _, p := range []string{path, path + ".1"} {
		msgs, err := ReadOutbox(p)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return Message{}, err
		}
		for i := len(msgs) - 1; i >= 0; i-- {
			if msgs[i].Ref == ref {
				return msgs[i], nil
			}
		}
	}
	return Message{}, fmt.Errorf("sms outbox %s: no message for %s", path, ref)
}

// Code returns the 6-digit code in a code message's text.
func Code(text string) (string, error) {
	for i := 0; i+6 <= len(text); i++ {
		if isDigits(text[i:i+6]) && (i == 0 || !isDigit(text[i-1])) && (i+6 == len(text) || !isDigit(text[i+6])) {
			return text[i : i+6], nil
		}
	}
	return "", errors.New("sms: the message holds no 6-digit code")
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
