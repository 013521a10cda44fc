package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/pos"
	"github.com/tapswitch/tapswitch/bench/proctest"
	"github.com/tapswitch/tapswitch/iso8583"
)

// TestDataFilesPrivate runs the real switchd with the usual umask of 022,
// writes to every store (a demo token in the vault at start, an approval in
// the journal, an account in the token service), stops it, and checks that
// every directory under its data directory is 0700 and every file 0600:
// Pebble's own 0755 and 0644 included.
func TestDataFilesPrivate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs switchd")
	}
	bin := proctest.Build(t, t.TempDir(), ".", "switchd")
	data := filepath.Join(t.TempDir(), "data")
	old := syscall.Umask(0o022) // what switchd inherits
	proc, w := proctest.DevSwitchd(t, bin, data, "-admin", "127.0.0.1:0", "-log-level", "warn")
	syscall.Umask(old)

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
	r, err := http.Post(w.API+"/v1/accounts", "application/json",
		strings.NewReader(`{"login":"modes","password":"correct horse battery"}`))
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode >= 300 {
		t.Fatalf("create account: %d", r.StatusCode)
	}
	proc.Process.Signal(syscall.SIGTERM)
	waitExit(t, proc)

	seen := map[string]int{}
	err = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
		rel, _ := filepath.Rel(data, path)
		seen[strings.SplitN(rel, string(filepath.Separator), 2)[0]]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, store := range []string{"vault", "journal", "tokensvc"} {
		if seen[store] < 3 {
			t.Errorf("%s: %d entries checked; the test did not see the store", store, seen[store])
		}
	}
	t.Logf("checked %v", seen)
}

// TestRefusesOpenListeners: switchd will not start with its admin listener
// off loopback and no admin token, nor with its public listener off
// loopback and no TLS certificate; it says which setting is missing.
func TestRefusesOpenListeners(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs switchd")
	}
	bin := proctest.Build(t, t.TempDir(), ".", "switchd")
	for flag, want := range map[string]string{"-admin": "admin_token_file", "-public": "public_tls_cert"} {
		cmd := exec.Command(bin, "-dev", "-data", t.TempDir(), "-listen", "127.0.0.1:0", "-public", "127.0.0.1:0",
			"-admin", "127.0.0.1:0", flag, "0.0.0.0:0", "-log-level", "warn")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		done := make(chan error, 1)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), want) {
				t.Errorf("%s 0.0.0.0:0: %v, stderr %q; want exit 1 naming %s", flag, err, stderr.String(), want)
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("%s 0.0.0.0:0: switchd started (still running after 30s)", flag)
		}
	}
}
