package pos

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/iso8583/mac"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/authorize"
)

// fakeSwitch answers every request rc, MACed under key (nil: no MAC). It
// is the one who may forge: the client must not believe it.
func fakeSwitch(t *testing.T, rc string, key []byte) string {
	t.Helper()
	return fakeSwitchWith(t, rc, key, wideNone)
}

// How fakeSwitchWith encodes its answers' bitmaps.
type wideMode int

const (
	wideNone      wideMode = iota // as the switch does
	wideSigned                    // an all-zero secondary bitmap, MACed as sent
	wideAfterSign                 // MACed first, then the secondary bitmap added
)

func fakeSwitchWith(t *testing.T, rc string, key []byte, wide wideMode) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				fr := iso8583.NewFrameReader(nc, 4096)
				for {
					frame, err := fr.Next()
					if err != nil {
						return
					}
					req, err := iso8583.Unpack(frame)
					if err != nil {
						return
					}
					resp := authorize.EchoAnswer(req, rc)
					var payload []byte
					if key == nil {
						payload, err = iso8583.Pack(resp)
					} else {
						payload, err = iso8583.PackSigned(resp, key)
					}
					if err != nil {
						return
					}
					if wide != wideNone {
						payload, _ = iso8583.WithZeroSecondaryBitmap(payload)
					}
					if wide == wideSigned && key != nil {
						mac.Sign(key, payload)
					}
					iso8583.WriteFrame(nc, payload)
				}
			}()
		}
	}()
	return l.Addr().String()
}

func TestClientRefusesForgedApprovals(t *testing.T) {
	keys := acquirer.Keys{DemoTerminal.Acquirer: bytes.Repeat([]byte{3}, 32)}
	own, _ := keys.TerminalKey(DemoTerminal.Acquirer, DemoTerminal.TerminalID)
	other, _ := keys.TerminalKey(DemoTerminal.Acquirer, "TERM0002")
	for _, tt := range []struct {
		name   string
		rc     string
		key    []byte
		forged bool
	}{
		{"approval MACed with the terminal's key", "00", own, false},
		{"approval without a MAC", "00", nil, true},
		{"approval MACed with another terminal's key", "00", other, true},
		{"refusal without a MAC", "63", nil, false},
		{"refusal with a wrong MAC", "05", other, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Dial(fakeSwitch(t, tt.rc, tt.key), time.Second, keys)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			resp, err := c.Do(ctx, Echo(DemoTerminal, "000001", time.Now()))
			if tt.forged != errors.Is(err, ErrForged) {
				t.Fatalf("err %v, want forged %v", err, tt.forged)
			}
			if !tt.forged && iso8583.FieldValue(resp, iso8583.FieldResponseCode) != tt.rc {
				t.Fatalf("answer %v", resp)
			}
			// The harness's fast path checks the same way.
			payload, err := iso8583.PackSigned(Echo(DemoTerminal, "000002", time.Now()), own)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := c.Exchange(ctx, "000002", payload, own)
			if tt.forged != errors.Is(err, ErrForged) {
				t.Fatalf("Exchange: err %v, want forged %v", err, tt.forged)
			}
			if rc != tt.rc {
				t.Fatalf("Exchange: code %q, want %q", rc, tt.rc)
			}
		})
	}
}

// An answer with an all-zero secondary bitmap (legal, though the switch
// never sends one) is read, and its MAC checked over the bytes as they
// came: over the plain encoding it is a forgery.
func TestClientReadsAllZeroSecondaryBitmap(t *testing.T) {
	keys := acquirer.Keys{DemoTerminal.Acquirer: bytes.Repeat([]byte{3}, 32)}
	own, _ := keys.TerminalKey(DemoTerminal.Acquirer, DemoTerminal.TerminalID)
	for _, tt := range []struct {
		name   string
		wide   wideMode
		forged bool
	}{
		{"MACed as sent", wideSigned, false},
		{"MACed before the secondary bitmap was added", wideAfterSign, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Dial(fakeSwitchWith(t, "00", own, tt.wide), time.Second, keys)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			echo := Echo(DemoTerminal, "000001", time.Now())
			echo.UnsetField(iso8583.FieldNetworkMgmtCode) // no field above 64: the answer's MAC goes in DE64
			resp, err := c.Do(ctx, echo)
			if tt.forged != errors.Is(err, ErrForged) || (!tt.forged && err != nil) {
				t.Fatalf("err %v, want forged %v", err, tt.forged)
			}
			if !tt.forged && iso8583.FieldValue(resp, iso8583.FieldResponseCode) != "00" {
				t.Fatalf("answer %v", resp)
			}
		})
	}
}
