package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/proctest"
	"github.com/tapswitch/tapswitch/bench/wallet"
	"github.com/tapswitch/tapswitch/iso8583"
)

// bannerEnd is the banner's last line's start: the dev console is up.
const bannerEnd = "lost phone: "

// consoleLine is a dev console log line: a time with milliseconds, a level.
var consoleLine = regexp.MustCompile(`^\d\d:\d\d:\d\d\.(\d\d\d) (TRC|DBG|INF|WRN|ERR) `)

// TestDevConsole runs switchd -dev with its output going to a file, echoes
// every second (a two-line config), taps once after a few seconds and
// stops it. The file holds no escape codes, the banner after every
// start-up line, exactly one line for the tap, no echo or sign-on line,
// and timestamps with milliseconds.
func TestDevConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs switchd")
	}
	bin := proctest.Build(t, t.TempDir(), ".", "switchd")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "switch.yaml")
	if err := os.WriteFile(cfg, []byte("issuer_links:\n  echo_interval: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	out, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, "-dev", "-config", cfg, "-data", data,
		"-listen", "127.0.0.1:0", "-public", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	waitFor(t, out.Name(), bannerEnd)
	time.Sleep(3 * time.Second) // three echo rounds on 52 connections
	tapOnce(t, data)
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd)

	text, _ := os.ReadFile(out.Name())
	if bytes.IndexByte(text, 0x1b) >= 0 {
		t.Error("escape codes in a file")
	}
	lines := strings.Split(strings.TrimRight(string(text), "\n"), "\n")
	banner := indexOf(lines, bannerEnd)
	var logs, taps, afterBanner, withMillis, sealed int
	for i, l := range lines {
		m := consoleLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		logs++
		if m[1] != "000" {
			withMillis++
		}
		if strings.Contains(l, " authorization ") {
			taps++
		}
		if strings.Contains(l, "mti=08") || strings.Contains(l, "issuer link up ") || strings.Contains(l, "DBG") {
			t.Errorf("link chatter or debug on the dev console: %q", l)
		}
		switch {
		case strings.Contains(l, "business day sealed"):
			sealed++ // a new node seals the day that closed before it started, once
		case i > banner:
			afterBanner++
		}
	}
	if sealed > 1 {
		t.Errorf("%d business days sealed by a new dev node, want at most the one before it started", sealed)
	}
	if taps != 1 {
		t.Errorf("%d authorization lines for one tap, want 1", taps)
	}
	// After the banner: the tap, "shutting down" and "switchd stopped".
	if afterBanner != 3 {
		t.Errorf("%d log lines after the banner, want 3 (the tap and the shutdown)", afterBanner)
	}
	if withMillis == 0 {
		t.Errorf("every one of %d timestamps ends in .000", logs)
	}
	if logs > 8 {
		t.Errorf("%d log lines for a start, one tap and a stop: the console is noisy", logs)
	}
	t.Logf("%d lines, %d of them log lines:\n%s", len(lines), logs, text)
}

// TestStartupErrorLast: with its terminal port taken, switchd -dev exits 1
// and the last line it prints says so, after no more than a line or two.
func TestStartupErrorLast(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs switchd")
	}
	bin := proctest.Build(t, t.TempDir(), ".", "switchd")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cmd := exec.Command(bin, "-dev", "-data", t.TempDir(), "-listen", taken.Addr().String(),
		"-public", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("switchd: %v, want exit 1; printed %q", err, out.String())
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	want := "switchd: terminal listener: listen tcp " + taken.Addr().String() + ": bind: address already in use"
	if last := lines[len(lines)-1]; last != want {
		t.Errorf("last line %q, want %q", last, want)
	}
	if len(lines) > 3 {
		t.Errorf("%d lines before the error; it should not be buried:\n%s", len(lines), out.String())
	}
}

func tapOnce(t *testing.T, data string) {
	t.Helper()
	w, err := wallet.Load(filepath.Join(data, wallet.DevFileName))
	if err != nil {
		t.Fatal(err)
	}
	card, err := w.Card("approve")
	if err != nil {
		t.Fatal(err)
	}
	c, err := pos.Dial(w.Switch, time.Second, proctest.DevKeys(t, data))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := pos.Tap{Terminal: pos.DemoTerminal, ProcessingCode: iso8583.ProcPurchase, Token: card.Token,
		TokenExpiry: card.TokenExpiry, Amount: 100, STAN: "000001", Time: time.Now()}.WithCard(card).Message()
	resp, err := c.Do(ctx, req)
	if err != nil || iso8583.FieldValue(resp, iso8583.FieldResponseCode) != iso8583.RCApproved {
		t.Fatalf("tap: %v", err)
	}
}

// waitFor waits until the file at path holds s.
func waitFor(t *testing.T, path, s string) {
	t.Helper()
	deadline := time.Now().Add(switchdExitWithin)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(s)) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("no %q within %v:\n%s", s, switchdExitWithin, b)
}

func indexOf(lines []string, prefix string) int {
	for i, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return i
		}
	}
	return len(lines)
}

// TestDevJSONLogs runs switchd -dev as the bench harness does, with
// -log-format json, once without the line per transaction and once with
// it: every log line is a JSON object with a level and a time, and one tap
// logs no line, then exactly one.
func TestDevJSONLogs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs switchd")
	}
	bin := proctest.Build(t, t.TempDir(), ".", "switchd")
	for _, tc := range []struct {
		flag string
		taps int
	}{{"-log-transactions=false", 0}, {"-log-transactions", 1}} {
		t.Run(tc.flag, func(t *testing.T) {
			dir := t.TempDir()
			data := filepath.Join(dir, "data")
			out, err := os.Create(filepath.Join(dir, "switchd.log"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			cmd := exec.Command(bin, "-dev", "-data", data, "-log-format", "json", tc.flag,
				"-listen", "127.0.0.1:0", "-public", "127.0.0.1:0", "-admin", "127.0.0.1:0")
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill() })
			waitFor(t, out.Name(), bannerEnd)
			tapOnce(t, data)
			time.Sleep(200 * time.Millisecond)
			cmd.Process.Signal(syscall.SIGTERM)
			waitExit(t, cmd)

			text, _ := os.ReadFile(out.Name())
			var logs, taps int
			for _, l := range strings.Split(string(text), "\n") {
				if !strings.HasPrefix(l, "{") {
					continue // the banner, for people
				}
				var ev struct{ Level, Time, Message string }
				if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.Level == "" || ev.Time == "" {
					t.Errorf("log line %q: not a JSON event with level and time (%v)", l, err)
				}
				logs++
				if ev.Message == "authorization" {
					taps++
				}
			}
			if consoleLine.Match(text) || bytes.Contains(text, []byte(" INF ")) {
				t.Errorf("console lines with -log-format json:\n%s", text)
			}
			if logs == 0 {
				t.Errorf("no JSON log line at all:\n%s", text)
			}
			if taps != tc.taps {
				t.Errorf("%d authorization lines for one tap with %s, want %d:\n%s", taps, tc.flag, tc.taps, text)
			}
		})
	}
}
