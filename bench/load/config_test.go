package load

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c, err := ParseFlags(nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Mode != ModeClosed || c.Concurrency != 64 || c.Connections != 32 || c.Duration != 10*time.Second ||
		c.Warmup != 2*time.Second || c.Mix.String() != DefaultMix || c.Amount != 100 || c.Issuers != IssuersChild ||
		c.OutDir != "bench-reports" || c.JSON {
		t.Fatalf("defaults %+v", c)
	}
	c, err = ParseFlags([]string{"-rate", "500", "-connections", "8", "-duration", "3s", "-mix", "purchase=1,reversal=1"}, nil, nil)
	if err != nil || c.Mode != ModeOpen || c.Rate != 500 || c.ConnectionsUsed() != 8 {
		t.Fatalf("open loop: %+v %v", c, err)
	}
	c, _ = ParseFlags([]string{"-max", "-concurrency", "4"}, nil, nil)
	if c.Mode != ModeClosed || c.ConnectionsUsed() != 4 {
		t.Fatalf("closed loop with 4 in flight uses %d connections", c.ConnectionsUsed())
	}
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-rate", "0"}, "-rate 0 outside 1..1000000"},
		{[]string{"-rate", "100", "-max"}, "exclude each other"},
		{[]string{"-rate", "100", "-concurrency", "5"}, "-concurrency is for the closed loop"},
		{[]string{"-concurrency", "0"}, "-concurrency 0 outside"},
		{[]string{"-connections", "5000"}, "-connections 5000 outside 1..4096"},
		{[]string{"-duration", "10ms"}, "-duration 10ms outside 1s..1h0m0s"},
		{[]string{"-duration", "2h"}, "outside 1s..1h0m0s"},
		{[]string{"-warmup", "-1s"}, "-warmup -1s outside"},
		{[]string{"-timeout", "1ms"}, "-timeout 1ms outside"},
		{[]string{"-mix", "purchase=1,balance=2"}, `unknown kind "balance"`},
		{[]string{"-amount", "1.234"}, "-amount: amount"},
		{[]string{"-amount", "0"}, "at least 0.01"},
		{[]string{"-switch", "10.0.0.1:8583"}, "not a loopback address"},
		{[]string{"-switch", "example.com:8583"}, "not a loopback address"},
		{[]string{"-switch", "127.0.0.1"}, "is not HOST:PORT"},
		{[]string{"-addr", "127.0.0.1"}, "is not HOST:PORT"}, // the deprecated spelling still checks
		{[]string{"-switch-pid", "12"}, "go with -switch"},
		{[]string{"-switch", "127.0.0.1:8583", "-keep"}, "are for the switch bench starts"},
		{[]string{"-acquirer-keys", "k", "-sim-issuers", "inprocess"}, "are for the switch bench starts"},
		{[]string{"-sim-issuers", "remote"}, `-sim-issuers "remote": want child or inprocess`},
		{[]string{"-baseline", "naive"}, `-baseline "naive": want relay`},
		{[]string{"-baseline", "relay", "-sim-issuers", "inprocess"}, "needs the issuers in their own process"},
		{[]string{"-switch", "127.0.0.1:8583", "-baseline", "relay"}, "are for the switch bench starts"},
		{[]string{"-json", "r.json"}, `unexpected argument "r.json"`}, // -json prints, it names no file
		{[]string{"-duration", "ten"}, "invalid value"},
		{[]string{"-nope"}, "flag provided but not defined: -nope"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		_, err := ParseFlags(tc.args, nil, nil)
		var ue UsageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: error %v, want one line with %q", tc.args, err, tc.want)
		}
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if _, err := ParseFlags([]string{"-h"}, &stdout, &stderr); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	for _, f := range []string{"-rate", "-max", "-concurrency", "-connections", "-duration", "-warmup", "-mix", "-switch ",
		"-wallet", "-acquirer-keys", "-sim-issuers", "-out", "-json", "-quiet"} {
		if !strings.Contains(stdout.String(), f) {
			t.Errorf("usage lacks %s", f)
		}
	}
	for _, old := range []string{"\n  -addr ", "\n  -issuers ", "\n  -html "} {
		if strings.Contains(stdout.String(), old) {
			t.Errorf("usage lists the deprecated %s", old)
		}
	}
	if stderr.Len() != 0 {
		t.Errorf("stderr %q", stderr.String())
	}
}

// TestDeprecatedSpellings: the old names still work for one release, each
// with a one-line warning naming the new one.
func TestDeprecatedSpellings(t *testing.T) {
	var stderr bytes.Buffer
	c, err := ParseFlags([]string{"-addr", "127.0.0.1:9", "-wallet", "w.json"}, nil, &stderr)
	if err != nil || c.Addr != "127.0.0.1:9" || stderr.String() != "bench: -addr is deprecated and goes away in the next release; use -switch (docs/cli.md)\n" {
		t.Fatalf("-addr: %+v %v %q", c, err, stderr.String())
	}
	stderr.Reset()
	c, err = ParseFlags([]string{"-issuers", "inprocess"}, nil, &stderr)
	if err != nil || c.Issuers != IssuersInProcess || !strings.Contains(stderr.String(), "use -sim-issuers") {
		t.Fatalf("-issuers: %+v %v %q", c, err, stderr.String())
	}
}

func TestMainBadFlagExits2(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"-rate", "-5"}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d", code)
	}
	if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "bench: ") {
		t.Fatalf("stderr %q, want one line", stderr.String())
	}
	if stdout.Len() != 0 {
		t.Fatalf("stdout %q", stdout.String())
	}
	if code := Main([]string{"-h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("-h exit %d", code)
	}
}

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8583": true, "127.1.2.3:1": true, "[::1]:8583": true, "localhost:8583": true,
		"0.0.0.0:8583": false, "192.168.1.1:8583": false, "[::]:1": false, "127.0.0.1:0": false, ":8583": false,
	} {
		if err := CheckLoopback(addr); (err == nil) != ok {
			t.Errorf("CheckLoopback(%q) = %v", addr, err)
		}
	}
}
