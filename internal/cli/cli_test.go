package cli

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
)

// TestAlias: a deprecated spelling sets the new flag (a bool one without a
// value too), marks it as given, warns on stderr, and is not listed by -h.
func TestAlias(t *testing.T) {
	var stdout, stderr bytes.Buffer
	fs := New("termsim pay", "", &stdout, &stderr)
	addr := fs.String("switch", "127.0.0.1:8583", "the switch's terminal listener")
	quiet := fs.Bool("quiet", false, "say less")
	fs.Alias("addr", "switch")
	fs.Alias("silent", "quiet")
	if err := fs.Parse([]string{"-addr", "127.0.0.1:9", "-silent"}); err != nil {
		t.Fatal(err)
	}
	if *addr != "127.0.0.1:9" || !*quiet {
		t.Fatalf("switch %q quiet %v", *addr, *quiet)
	}
	want := "termsim pay: -addr is deprecated and goes away in the next release; use -switch (docs/cli.md)\n" +
		"termsim pay: -silent is deprecated and goes away in the next release; use -quiet (docs/cli.md)\n"
	if stderr.String() != want {
		t.Fatalf("stderr %q, want %q", stderr.String(), want)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if !given["switch"] || !given["quiet"] {
		t.Fatalf("the new names are not marked as given: %v", given)
	}
}

// TestHelp: -h prints the usage on stdout under the fixed name, with each
// flag's default as defined (not as parsed), without the aliases.
func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	fs := New("bench", "Loads a switch.", &stdout, &stderr)
	fs.String("out", "bench-reports", "report `DIR`")
	fs.String("switch", "", "the switch's terminal listener `HOST:PORT`")
	fs.Alias("addr", "switch")
	fs.AlsoUsage("bench other [flags]")
	if err := fs.Parse([]string{"-out", "elsewhere", "-h"}); !errors.Is(err, ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	got := stdout.String()
	for _, want := range []string{"usage: bench [flags]\n       bench other [flags]\n\nLoads a switch.\n\nflags:\n",
		"-out DIR", `(default "bench-reports")`, "-switch HOST:PORT"} {
		if !strings.Contains(got, want) {
			t.Errorf("usage lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "-addr") || strings.Contains(got, "elsewhere") || stderr.Len() != 0 {
		t.Errorf("usage lists an alias or a parsed value, or stderr has %q:\n%s", stderr.String(), got)
	}
}

func TestParseErrors(t *testing.T) {
	fs := New("tapctl rotate", "", nil, nil)
	fs.Bool("status", false, "")
	if err := fs.Parse([]string{"-nope"}); err == nil || !strings.Contains(err.Error(), "-nope") {
		t.Errorf("unknown flag: %v", err)
	}
	fs = New("tapctl rotate", "", nil, nil)
	if err := fs.Parse([]string{"extra"}); err == nil || err.Error() != `unexpected argument "extra"` {
		t.Errorf("argument: %v", err)
	}
}

func TestDispatch(t *testing.T) {
	commands := []string{"rotate", "settle-keys"}
	for _, tc := range []struct {
		args           []string
		index, code    int
		stdout, stderr string
	}{
		{[]string{"settle-keys", "-keys", "k"}, 1, 0, "", ""},
		{[]string{"-h"}, -1, 0, "USAGE", ""},
		{[]string{"help"}, -1, 0, "USAGE", ""},
		{[]string{"--help"}, -1, 0, "USAGE", ""},
		{nil, -1, 2, "", "tapctl: no command given\n\nUSAGE"},
		{[]string{"rotat"}, -1, 2, "", "tapctl: unknown command \"rotat\" (tapctl -h lists the commands)\n"},
	} {
		var stdout, stderr bytes.Buffer
		i, code := Dispatch("tapctl", "USAGE", commands, tc.args, &stdout, &stderr)
		if i != tc.index || code != tc.code || stdout.String() != tc.stdout || stderr.String() != tc.stderr {
			t.Errorf("%v: %d %d %q %q", tc.args, i, code, stdout.String(), stderr.String())
		}
	}
}
