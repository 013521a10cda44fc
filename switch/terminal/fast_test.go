package terminal

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/authorize"
)

// twoPaths answers like identityHandler on both paths and says which one
// each request took: "fast" (HandleRequest) or "moov" (Handle).
type twoPaths struct{ seen chan string }

func (h twoPaths) Handle(_ context.Context, msg *moov.Message, from acquirer.Identity) *moov.Message {
	h.seen <- "moov " + from.Status.String()
	return authorize.EchoAnswer(msg, iso8583.RCApproved)
}

func (h twoPaths) HandleRequest(_ context.Context, req authorize.Request, from acquirer.Identity) authorize.Answer {
	h.seen <- "fast " + from.Status.String()
	return authorize.EchoRequest(req, iso8583.RCApproved)
}

// exchange writes payload as one frame on a new connection to addr and
// returns the answer's payload.
func exchange(t *testing.T, addr string, payload []byte) []byte {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if err := iso8583.WriteFrame(nc, payload); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	frame, err := iso8583.NewFrameReader(nc, 4096).Next()
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(frame)
}

// A server whose handler takes the hot path sends the same bytes, for
// every kind of frame, as one that reads everything with moov; well-formed
// 0100/0200 go to HandleRequest with the sender the MAC check established,
// everything else to Handle.
func TestHotPathAnswersAsMoovPath(t *testing.T) {
	h := twoPaths{seen: make(chan string, 16)}
	_, fastAddr := startServer(t, h, nil)
	_, moovAddr := startServer(t, identityHandler(h.Handle), nil)
	key, _ := testKeys.TerminalKey(pos.DemoTerminal.Acquirer, pos.DemoTerminal.TerminalID)
	sign := func(m *moov.Message) []byte {
		p, err := iso8583.PackSigned(m, key)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	malformed := mustPack(t, request("000003", 1))
	malformed[4+8+2+16] = 'X' // DE3
	noMerchant := request("000004", 1)
	noMerchant.UnsetField(iso8583.FieldMerchantID)
	echo := iso8583.NewMessage()
	echo.MTI(iso8583.MTINetworkMgmtRequest)
	echo.Field(iso8583.FieldTransmissionTime, "1125120000")
	echo.Field(iso8583.FieldSTAN, "000005")
	echo.Field(iso8583.FieldTerminalID, pos.DemoTerminal.TerminalID)
	echo.Field(iso8583.FieldNetworkMgmtCode, iso8583.NetEcho)
	tests := []struct {
		name    string
		payload []byte
		path    string // the fast server's handler call; "" for none
	}{
		{"signed 0200", sign(request("000001", 1)), "fast authenticated"},
		{"unsigned 0200", mustPack(t, request("000002", 1)), "fast MAC missing"},
		{"malformed 0200", malformed, ""},
		{"0200 without DE42", sign(noMerchant), "moov authenticated"},
		{"0800 echo", sign(echo), "moov authenticated"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := exchange(t, fastAddr, tc.payload)
			if tc.path != "" {
				if path := <-h.seen; path != tc.path {
					t.Errorf("hot-path server took %q, want %q", path, tc.path)
				}
			}
			want := exchange(t, moovAddr, tc.payload)
			if tc.path != "" {
				<-h.seen
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("answers differ:\nhot path %q\n    moov %q", got, want)
			}
		})
	}
}

// blockingConn lets a test hold the writer inside a Write and count what
// each Write carries.
type blockingConn struct {
	net.Conn
	started chan struct{}
	release chan struct{}
	mu      sync.Mutex
	writes  [][]byte
}

func (c *blockingConn) Write(b []byte) (int, error) {
	c.started <- struct{}{}
	<-c.release
	c.mu.Lock()
	c.writes = append(c.writes, bytes.Clone(b))
	c.mu.Unlock()
	return len(b), nil
}

func (c *blockingConn) SetWriteDeadline(time.Time) error { return nil }

// Answers that become ready while a write is under way leave together in
// the next one.
func TestAnswersCoalescedIntoOneWrite(t *testing.T) {
	conn := &blockingConn{started: make(chan struct{}, 8), release: make(chan struct{})}
	w := newAnswerWriter(conn, time.Second)
	if err := w.Send([]byte("first")); err != nil {
		t.Fatal(err)
	}
	<-conn.started // the writer is inside the first write
	for _, p := range []string{"a", "bb", "ccc"} {
		if err := w.Send([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		for range 2 {
			conn.release <- struct{}{}
		}
	}()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := [][]byte{[]byte("\x00\x05first"), []byte("\x00\x01a\x00\x02bb\x00\x03ccc")}
	if len(conn.writes) != 2 || !bytes.Equal(conn.writes[0], want[0]) || !bytes.Equal(conn.writes[1], want[1]) {
		t.Fatalf("writes %q, want %q", conn.writes, want)
	}
	if err := w.Send([]byte("late")); !errors.Is(err, iso8583.ErrWriterClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
}
