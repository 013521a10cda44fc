package terminal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/iso8583"
)

// failingListener fails its first len(errs) Accepts with errs, in order,
// then accepts for real.
type failingListener struct {
	net.Listener
	errs  []error
	calls atomic.Int64
}

func (l *failingListener) Accept() (net.Conn, error) {
	if i := l.calls.Add(1) - 1; int(i) < len(l.errs) {
		return nil, l.errs[i]
	}
	return l.Listener.Accept()
}

func acceptError(errno syscall.Errno) error {
	return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
}

// TestAcceptErrorsDoNotEndServe: the errors a flood of connections makes
// Accept return (out of file descriptors, per process and system-wide; a
// connection aborted before it was taken; an error of no known kind) do not
// end Serve: it backs off and the next terminal is served.
func TestAcceptErrorsDoNotEndServe(t *testing.T) {
	s, err := New(Config{ConnectionsMax: 16, InflightPerConnectionMax: 4, FrameBytesMax: 4096,
		IdleTimeout: 5 * time.Second, WriteTimeout: time.Second, Logger: zerolog.New(zerolog.NewTestWriter(t)), Senders: testSenders},
		approveAfterAmountMillis)
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &failingListener{Listener: inner, errs: []error{
		acceptError(syscall.EMFILE), acceptError(syscall.EMFILE), acceptError(syscall.ENFILE),
		acceptError(syscall.ECONNABORTED), errors.New("something new"), acceptError(syscall.EMFILE),
	}}
	served := make(chan error, 1)
	start := time.Now()
	go func() { served <- s.Serve(l) }()
	c, err := pos.Dial(inner.Addr().String(), time.Second, testKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := c.Do(ctx, request("000201", 1))
	select {
	case err := <-served:
		t.Fatalf("Serve ended on a passing accept error: %v", err)
	default:
	}
	if err != nil || iso8583.FieldValue(resp, iso8583.FieldResponseCode) != "00" {
		t.Fatalf("terminal after the accept errors: %v", err)
	}
	// 5+10+20+40+80+160 ms of back-off: not a busy loop.
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Fatalf("six failed accepts retried within %v: no back-off", took)
	}
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

// lowLimitChild makes the test binary the server of TestFloodUnderLowFileLimit.
const lowLimitChild = "TAPSWITCH_TEST_LOW_NOFILE_SERVER"

// TestFloodUnderLowFileLimit runs the terminal server in a child process
// whose file limit leaves room for 8 connections, floods it with 60, and
// checks that once the flood ends a terminal is served again: the process
// ran out of file descriptors, for real, and lived.
func TestFloodUnderLowFileLimit(t *testing.T) {
	if os.Getenv(lowLimitChild) == "1" {
		lowLimitServer()
		return
	}
	if testing.Short() {
		t.Skip("starts a child process")
	}
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("the child counts its open files in /proc/self/fd")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFloodUnderLowFileLimit$")
	cmd.Env = append(os.Environ(), lowLimitChild+"=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { cmd.Process.Kill(); <-exited }()
	lines := bufio.NewScanner(out)
	var addr string
	for lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "serving "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatal("the child printed no address")
	}
	go func() {
		for lines.Scan() {
			t.Logf("child: %s", lines.Text())
		}
	}()
	var flood []net.Conn
	for range 60 {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatalf("flood connection %d: %v", len(flood), err)
		}
		flood = append(flood, nc)
	}
	time.Sleep(300 * time.Millisecond) // the child runs into its limit
	for _, nc := range flood {
		nc.Close()
	}
	c, err := pos.Dial(addr, time.Second, testKeys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := c.Do(ctx, request("000301", 1))
	select {
	case err := <-exited:
		t.Fatalf("the server process ended: %v", err)
	default:
	}
	if err != nil || iso8583.FieldValue(resp, iso8583.FieldResponseCode) != "00" {
		t.Fatalf("terminal after the flood: %v", err)
	}
}

// lowLimitServer is the child: it lowers its own file limit to what is open
// now plus 8 and serves until killed; if Serve ever returns, it says so and
// exits.
func lowLimitServer() {
	s, err := New(Config{ConnectionsMax: 4096, InflightPerConnectionMax: 4, FrameBytesMax: 4096,
		IdleTimeout: time.Minute, WriteTimeout: time.Second, Logger: zerolog.New(os.Stderr), Senders: testSenders}, approveAfterAmountMillis)
	if err != nil {
		panic(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		panic(err)
	}
	limit := uint64(len(fds) + 8)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		panic(err)
	}
	fmt.Printf("serving %s\n", l.Addr())
	err = s.Serve(l)
	fmt.Printf("Serve returned: %v\n", err)
	os.Exit(3)
}
