package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/internal/syncbuf"
	"github.com/tapswitch/tapswitch/iso8583"
)

// issuersFile writes an issuers.yaml with ICBC and SPTC at the given addresses.
func issuersFile(t *testing.T, icbc, sptc string) string {
	t.Helper()
	doc := fmt.Sprintf(`issuers:
  - {id: ICBC, name: ICBC, kind: bank, institution: "01020000", address: "%s"}
  - {id: SPTC, name: SPTC, kind: transit, operator: "0021", city: Shanghai, institution: "31000002", address: "%s"}
`, icbc, sptc)
	path := filepath.Join(t.TempDir(), "issuers.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-drop-rate", "2"},
		{"-cards", "-1"},
		{"-latency", "soon"},
		{"-no-such-flag"},
		{"-log-level", "loud"},
		{"-only", "NOPE"},
		{"extra"},
		{"-late-rate", "0.1"},
		{"-garbage-rate", "0.6", "-duplicate-rate", "0.6"},
		{"-late-by", "2m", "-late-rate", "0.1"},
		{"-cutoff", "25:00"},
		{"-timezone", "Nowhere/City"},
		{"-ledger-dir", "/nonexistent/issuersim"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr)
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "issuersim: ") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr.String())
		}
	}
}

func TestPortInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-issuers", issuersFile(t, l.Addr().String(), "127.0.0.1:0"), "-cards", "10", "-admin", ""}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "address already in use") || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
	// The admin address in use: the issuers started are closed again.
	stdout.Reset()
	stderr.Reset()
	code = run(context.Background(), []string{"-issuers", issuersFile(t, "127.0.0.1:0", "127.0.0.1:0"), "-cards", "10", "-admin", l.Addr().String()}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "-admin") || strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 {
		t.Fatalf("admin in use: exit %d, stderr %q", code, stderr.String())
	}
}

func TestRunServesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncbuf.Buffer
	done := make(chan int, 1)
	args := []string{"-issuers", issuersFile(t, "127.0.0.1:0", "127.0.0.1:0"), "-only", "SPTC", "-cards", "10", "-log-level", "warn", "-admin", ""}
	go func() { done <- run(ctx, args, &stdout, &stderr) }()
	addr := waitFor(t, &stdout, &stderr, "SPTC listening on ")
	if strings.Contains(stdout.String(), "ICBC") || strings.Contains(stdout.String(), "admin") {
		t.Fatalf("-only or -admin \"\" ignored: %q", stdout.String())
	}
	echo(t, addr)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop on cancel")
	}
}

// waitFor waits for run to print a line starting with prefix and returns
// the word after it.
func waitFor(t *testing.T, stdout, stderr fmt.Stringer, prefix string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, after, ok := strings.Cut(stdout.String(), prefix); ok {
			return strings.Fields(after)[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line %q; stdout %q stderr %q", prefix, stdout.String(), stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func echo(t *testing.T, addr string) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	msg := iso8583.NewMessage()
	msg.MTI(iso8583.MTINetworkMgmtRequest)
	msg.Field(iso8583.FieldTransmissionTime, "0315100000")
	msg.Field(iso8583.FieldSTAN, "000001")
	msg.Field(iso8583.FieldNetworkMgmtCode, iso8583.NetEcho)
	payload, err := iso8583.Pack(msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := iso8583.WriteFrame(nc, payload); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	frame, err := iso8583.NewFrameReader(nc, iso8583.FrameBytesMaxDefault).Next()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := iso8583.Unpack(frame)
	if err != nil {
		t.Fatal(err)
	}
	if mti, _ := resp.GetMTI(); mti != iso8583.MTINetworkMgmtResponse {
		t.Fatalf("echo answered %s", mti)
	}
	if rc, _ := resp.GetString(iso8583.FieldResponseCode); rc != iso8583.RCApproved {
		t.Fatalf("echo rc %s", rc)
	}
}
