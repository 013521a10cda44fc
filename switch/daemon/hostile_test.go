package daemon

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/switch/node"
)

// TestHostileTerminals attacks the terminal listener with random bytes,
// truncated frames, lying length headers, a flood of connections over the
// limit and half-open connections, all at once, while a good terminal
// keeps tapping: every one of its taps is approved, and once the attack
// stops the switch is back to the good terminal's one connection.
func TestHostileTerminals(t *testing.T) {
	d, w := startWorldWith(t, func(c *node.Config) {
		c.Terminals.ConnectionsMax = 64
		c.Terminals.IdleTimeout = 300 * time.Millisecond
	})
	card, _ := w.Card("approve")
	good := newTerminal(t, d, "TERM0305")
	addr := d.Node.TerminalAddr()

	stop := make(chan struct{})
	var attackers sync.WaitGroup
	for i, attack := range []func(*rand.Rand) []byte{randomBytes, truncatedFrame, lyingHeader, nothing} {
		for lane := range 12 {
			attackers.Add(1)
			go func() {
				defer attackers.Done()
				rng := rand.New(rand.NewPCG(uint64(i), uint64(lane)))
				for n := 0; n < 200; n++ { // bounded
					select {
					case <-stop:
						return
					default:
					}
					assault(addr, attack(rng))
				}
			}()
		}
	}
	attackers.Add(1)
	go func() { // a flood well over the connection limit, held open
		defer attackers.Done()
		var conns []net.Conn
		for range 150 {
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				conns = append(conns, c)
			}
		}
		<-stop
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 40 {
		if rc, _ := good.do(good.tap(card, iso8583.ProcPurchase, 1_00)); rc != "00" {
			t.Fatalf("good terminal under attack got %s", rc)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	attackers.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for d.Node.Metrics() != nil && time.Now().Before(deadline) {
		if n := openConnections(d); n == 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := openConnections(d); n != 1 {
		t.Fatalf("%d terminal connections open after the attack, want the good one", n)
	}
	if rc, _ := good.do(good.tap(card, iso8583.ProcPurchase, 1_00)); rc != "00" {
		t.Fatalf("after the attack: %s", rc)
	}
	assertMoneyAgrees(t, d, card.Issuer)
}

// assault opens one connection, writes payload, and leaves it open for a
// moment (the half-open and lying ones rely on the idle time-out).
func assault(addr string, payload []byte) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return
	}
	c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	c.Write(payload)
	buf := make([]byte, 512)
	c.Read(buf)
	c.Close()
}

func randomBytes(rng *rand.Rand) []byte {
	b := make([]byte, 1+rng.IntN(300))
	for i := range b {
		b[i] = byte(rng.UintN(256))
	}
	return b
}

func truncatedFrame(rng *rand.Rand) []byte {
	b := binary.BigEndian.AppendUint16(nil, 100)
	return append(b, "0200"[:1+rng.IntN(3)]...)
}

func lyingHeader(rng *rand.Rand) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(1000+rng.IntN(3000)))
	return append(b, "0200"...)
}

func nothing(*rand.Rand) []byte { return nil }

// openConnections reads the terminal connection gauge.
func openConnections(d *DevWorld) int {
	mfs, err := d.Node.Metrics().Registry().Gather()
	if err != nil {
		return -1
	}
	for _, mf := range mfs {
		if mf.GetName() == "tapswitch_terminal_connections" {
			return int(mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
	return -1
}
