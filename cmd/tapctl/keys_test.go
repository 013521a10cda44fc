package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/settlement/transit"
	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/node"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// TestKeysInit: each tapctl keys subcommand writes a file its loader
// takes, mode 0600, in a directory it makes when missing; none replaces an
// existing file.
func TestKeysInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // missing: a fresh clone has no ./data
	cfg, err := node.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	list, _, err := cfg.Network()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := cfg.Registry(list)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sub, file string
		load      func(path string) error
	}{
		{"init", "vault.keys", func(path string) error {
			k, err := vault.LoadKeyringFile(path)
			if err == nil && k.CurrentVersion() != 1 {
				t.Errorf("current data key v%d, want v1", k.CurrentVersion())
			}
			return err
		}},
		{"init-acquirers", "acquirer.keys", func(path string) error {
			keys, err := acquirer.LoadKeysFile(path)
			if err == nil && len(keys) != len(reg.Acquirers()) {
				t.Errorf("%d acquirer keys, want one for each of %v", len(keys), reg.Acquirers())
			}
			for _, id := range reg.Acquirers() {
				if _, ok := keys[id]; !ok {
					t.Errorf("no key for acquirer %s", id)
				}
			}
			return err
		}},
		{"init-operators", "operator.keys", func(path string) error {
			keys, err := transit.LoadMasterKeys(path)
			var want []string
			for _, is := range list {
				if is.Kind == issuers.KindTransit {
					want = append(want, is.Operator)
				}
			}
			if err == nil && (len(keys) != len(want) || len(want) != 6) {
				t.Errorf("%d operator keys, want one for each of %v", len(keys), want)
			}
			for _, op := range want {
				if _, ok := keys[op]; !ok {
					t.Errorf("no master key for operator %s", op)
				}
			}
			return err
		}},
		{"init-admin-token", "admin.token", func(path string) error {
			b, err := os.ReadFile(path)
			if err == nil && !regexp.MustCompile(`^[0-9a-f]{64}\n$`).Match(b) {
				t.Errorf("admin token %q: want 64 hex characters", b)
			}
			return err
		}},
	} {
		path := filepath.Join(dir, tc.file)
		var stdout, stderr bytes.Buffer
		if code := run([]string{"keys", tc.sub, path}, &stdout, &stderr); code != 0 {
			t.Fatalf("keys %s: exit %d: %s", tc.sub, code, stderr.String())
		}
		if !strings.Contains(stdout.String(), "wrote "+path+" (mode 0600)") {
			t.Errorf("keys %s printed %q", tc.sub, stdout.String())
		}
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("keys %s: %v, mode %v", tc.sub, err, fi.Mode().Perm())
		}
		if err := tc.load(path); err != nil {
			t.Fatalf("keys %s: its loader refuses the file: %v", tc.sub, err)
		}
		before, _ := os.ReadFile(path)
		stdout.Reset()
		stderr.Reset()
		if code := run([]string{"keys", tc.sub, path}, &stdout, &stderr); code != 1 ||
			!strings.Contains(stderr.String(), path+" already exists; not replaced") {
			t.Errorf("keys %s over an existing file: exit %d, %q", tc.sub, code, stderr.String())
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
			t.Errorf("keys %s replaced an existing file", tc.sub)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("made directory: %v, mode %v", err, fi.Mode().Perm())
	}
}

func TestKeysUsage(t *testing.T) {
	for args, want := range map[string]string{
		"keys":          "tapctl keys: no command given",
		"keys init":     "tapctl keys init: want FILE after the flags",
		"keys init a b": `tapctl keys init: unexpected argument "b" after FILE`,
		"keys make f":   `tapctl keys: unknown command "make"`,
	} {
		var stdout, stderr bytes.Buffer
		if code := run(strings.Fields(args), &stdout, &stderr); code != 2 || !strings.HasPrefix(stderr.String(), want) {
			t.Errorf("%v: exit %d, %q", args, code, stderr.String())
		}
	}
}
