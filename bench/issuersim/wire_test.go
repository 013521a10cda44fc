package issuersim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	moov "github.com/moov-io/iso8583"
	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/issuers"
)

// testToken is what the switch would have put in DE2 towards the terminal.
var testToken = iso8583.TokenData{Token: "6288880000000017", RequestorID: "40010030273", DeviceID: "MIPHONE-0001"}

// msgSpec is one request to build.
type msgSpec struct {
	mti, pc, pan, expiry string
	amount               iso8583.Amount
	stan                 int
	txTime               string
	original             string // DE90 for reversals
	netCode              string // DE70 for 0800
}

// build makes a request the way the switch sends it to an issuer.
func build(t *testing.T, m msgSpec) *moov.Message {
	t.Helper()
	msg := iso8583.NewMessage()
	msg.MTI(m.mti)
	set := func(id int, v string) {
		if err := msg.Field(id, v); err != nil {
			t.Fatal(err)
		}
	}
	txTime := m.txTime
	if txTime == "" {
		txTime = "0315100000"
	}
	set(iso8583.FieldTransmissionTime, txTime)
	set(iso8583.FieldSTAN, fmt.Sprintf("%06d", m.stan))
	if m.mti == iso8583.MTINetworkMgmtRequest {
		set(iso8583.FieldNetworkMgmtCode, m.netCode)
		return msg
	}
	set(iso8583.FieldPAN, m.pan)
	set(iso8583.FieldProcessingCode, m.pc)
	set(iso8583.FieldAmount, m.amount.Field())
	set(iso8583.FieldRRN, fmt.Sprintf("%012d", m.stan))
	set(iso8583.FieldTerminalID, "TERM0001")
	set(iso8583.FieldCurrency, iso8583.CurrencyCNY)
	if m.original != "" {
		set(iso8583.FieldOriginalData, m.original)
		return msg
	}
	set(iso8583.FieldLocalTime, "180000")
	set(iso8583.FieldLocalDate, "0315")
	set(iso8583.FieldExpiry, m.expiry)
	set(iso8583.FieldMCC, "5411")
	set(iso8583.FieldPOSEntryMode, "071")
	set(iso8583.FieldPOSCondition, "00")
	set(iso8583.FieldAcquirer, "01020000")
	set(iso8583.FieldForwarder, "99990000")
	set(iso8583.FieldMerchantID, "MERCHANT0000001")
	set(iso8583.FieldMerchantNameLocation, "TEST SHOP SHANGHAI")
	set(iso8583.FieldPrivateTokenData, testToken.Encode())
	set(iso8583.FieldReceivingInstitution, "01020000")
	return msg
}

// dataOf is DE90 for a reversal of m.
func dataOf(m msgSpec) string {
	txTime := m.txTime
	if txTime == "" {
		txTime = "0315100000"
	}
	return fmt.Sprintf("%s%06d%s%011d%011d", m.mti, m.stan, txTime, 1020000, 99990000)
}

type client struct {
	t  *testing.T
	nc net.Conn
	fr *iso8583.FrameReader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, fr: iso8583.NewFrameReader(nc, iso8583.FrameBytesMaxDefault)}
}

func (c *client) send(msg *moov.Message) {
	c.t.Helper()
	payload, err := iso8583.Pack(msg)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := iso8583.WriteFrame(c.nc, payload); err != nil {
		c.t.Fatal(err)
	}
}

// recv reads one response, or returns the read error.
func (c *client) recv(wait time.Duration) (*moov.Message, error) {
	c.nc.SetReadDeadline(time.Now().Add(wait))
	frame, err := c.fr.Next()
	if err != nil {
		return nil, err
	}
	msg, err := iso8583.Unpack(frame)
	if err != nil {
		c.t.Fatalf("response does not unpack: %v", err)
	}
	return msg, nil
}

// recvFrame reads one frame's raw payload, failing the test on an error.
func (c *client) recvFrame(wait time.Duration) []byte {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(wait))
	frame, err := c.fr.Next()
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return bytes.Clone(frame)
}

func (c *client) call(m msgSpec) *moov.Message {
	c.t.Helper()
	c.send(build(c.t, m))
	msg, err := c.recv(5 * time.Second)
	if err != nil {
		c.t.Fatalf("%s STAN %d: %v", m.mti, m.stan, err)
	}
	return msg
}

func get(t *testing.T, msg *moov.Message, id int) string {
	t.Helper()
	return fieldString(msg, id)
}

// startIssuer serves an issuer on a loopback port and closes it at the end.
func startIssuer(t *testing.T, faults Faults) (*Issuer, string) {
	t.Helper()
	s, err := New(Config{
		Issuer: issuers.Issuer{ID: "TST", Kind: issuers.KindBank, Institution: "01020000"},
		Cards:  testCards(), Faults: faults, Seed: 7,
		Now:    func() time.Time { return testNow },
		Logger: testLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		s.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, l.Addr().String()
}

// testLogger writes debug lines when TAPSWITCH_TEST_LOG is set.
func testLogger() zerolog.Logger {
	if os.Getenv("TAPSWITCH_TEST_LOG") == "" {
		return zerolog.Nop()
	}
	return zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr}).Level(zerolog.DebugLevel)
}

func isClosed(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		(errors.As(err, &ne) && !ne.Timeout())
}

// fieldString returns a field's value as the contract reads it ("" when
// absent): tests read the issuer's answers with the reference codec.
func fieldString(msg *moov.Message, id int) string {
	return iso8583.FieldValue(msg, id)
}
