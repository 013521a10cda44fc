package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapswitch/tapswitch/bench/proctest"
	"github.com/tapswitch/tapswitch/switch/node"
)

// switchdExitWithin bounds how long a switch that must refuse to start may
// take to do so.
const switchdExitWithin = 30 * time.Second

// TestFreshCloneKeys is "Running it for real" on a fresh clone, with a
// config file of two lines: switchd without key files stops with an error
// naming the tapctl command that creates each one; after those commands
// it serves, every other field at its built-in default.
func TestFreshCloneKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs switchd and tapctl")
	}
	bins := t.TempDir()
	switchd := proctest.Build(t, bins, ".", "switchd")
	tapctl := proctest.Build(t, bins, "../tapctl", "tapctl")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "switch.yaml")
	if err := os.WriteFile(cfg, []byte("node_id: two-lines\ncvm_limit: 100\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	def, err := node.LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	read, err := node.LoadConfig(cfg)
	def.NodeID, def.CVMLimit = "two-lines", 100
	if err != nil || !reflect.DeepEqual(read, def) {
		t.Fatalf("two-line config: %v; want the built-in one with node_id and cvm_limit changed", err)
	}
	data := filepath.Join(dir, "data")
	vaultKeys, acqKeys := filepath.Join(data, "vault.keys"), filepath.Join(data, "acquirer.keys")
	args := []string{"-config", cfg, "-data", data, "-listen", "127.0.0.1:0", "-public", "127.0.0.1:0", "-admin", "127.0.0.1:0",
		"-keys", vaultKeys, "-acquirer-keys", acqKeys}

	if out := refusal(t, switchd, args...); !strings.Contains(out, "create one with: tapctl keys init "+vaultKeys) {
		t.Fatalf("no vault key file: %q; want the command that creates it", out)
	}
	tapctlOK(t, tapctl, "keys", "init", vaultKeys)
	if out := refusal(t, switchd, args...); !strings.Contains(out, "tapctl keys init-acquirers "+acqKeys) {
		t.Fatalf("no acquirer key file: %q; want the command that creates it", out)
	}
	tapctlOK(t, tapctl, "keys", "init-acquirers", acqKeys)

	if out := refusal(t, switchd, "-dev", "-data", t.TempDir(), "-keys", vaultKeys); !strings.Contains(out, "not for -dev") {
		t.Fatalf("-dev -keys: %q", out)
	}

	cmd := exec.Command(switchd, args...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	admin := servingAdmin(t, stderr)
	resp, err := http.Get("http://" + admin + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	waitExit(t, cmd)
}

// refusal runs switchd, which must exit 1 within switchdExitWithin, and
// returns what it printed.
func refusal(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("switchd %v: %v, want exit 1; printed %q", args, err, out.String())
		}
	case <-time.After(switchdExitWithin):
		cmd.Process.Kill()
		<-done
		t.Fatalf("switchd %v still running after %v; printed %q", args, switchdExitWithin, out.String())
	}
	return out.String()
}

func tapctlOK(t *testing.T, bin string, args ...string) {
	t.Helper()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("tapctl %v: %v\n%s", args, err, out)
	}
}

// servingAdmin reads switchd's JSON log until its "switchd serving" line
// and returns the admin address it names.
func servingAdmin(t *testing.T, stderr io.Reader) string {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		lines := bufio.NewScanner(stderr)
		for lines.Scan() {
			var line struct{ Message, Admin string }
			if json.Unmarshal(lines.Bytes(), &line) == nil && line.Message == "switchd serving" {
				found <- line.Admin
				break
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case admin := <-found:
		return admin
	case <-time.After(switchdExitWithin):
		t.Fatal("switchd logged no \"switchd serving\" line")
		return ""
	}
}
