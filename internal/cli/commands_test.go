package cli_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// commands is every command and subcommand, as its usage names it.
var commands = []string{
	"switchd", "issuersim", "bench", "relay", "natsd",
	"termsim", "termsim pay", "termsim refund", "termsim topup", "termsim balance", "termsim echo", "termsim gate",
	"wallet", "wallet login", "wallet add-card", "wallet confirm", "wallet dev-code", "wallet tokens",
	"settle", "settle reconcile",
	"tapctl", "tapctl rotate", "tapctl settle-keys", "tapctl close-day",
	"tapctl keys", "tapctl keys init", "tapctl keys init-acquirers", "tapctl keys init-admin-token",
}

// withoutFlags are commands that take only an argument: docs/cli.md has
// their section, with no flag rows.
var withoutFlags = []string{"tapctl keys init", "tapctl keys init-admin-token"}

// withSubcommands take a command word first; an unknown one is refused.
var withSubcommands = []string{"termsim", "wallet", "settle", "tapctl", "tapctl keys"}

// buildAll builds the seven commands once, into a directory whose path is
// unlike any command name (as go run's build cache is).
func buildAll(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the seven commands")
	}
	dir := filepath.Join(t.TempDir(), "go-build-cache-like", "exe")
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/...")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/...: %v\n%s", err, out)
	}
	return dir
}

// runCmd runs "termsim pay" with args from bin and returns the exit code,
// stdout and stderr.
func runCmd(t *testing.T, bin, command string, args ...string) (int, string, string) {
	t.Helper()
	words := strings.Fields(command)
	cmd := exec.Command(filepath.Join(bin, words[0]), append(words[1:], args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir()) // no dev world here
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("%s: %v", command, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestEveryCommandHelps: -h exits 0 with the usage on stdout, under the
// command's own name, for every command and subcommand; a flag that does
// not exist, and an unknown subcommand, exit 2 with one line on stderr.
func TestEveryCommandHelps(t *testing.T) {
	bin := buildAll(t)
	for _, command := range commands {
		t.Run(command, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, bin, command, "-h")
			if code != 0 || stderr != "" {
				t.Fatalf("-h: exit %d, stderr %q", code, stderr)
			}
			if !strings.HasPrefix(stdout, "usage: "+command+" ") || strings.Contains(stdout, bin) {
				t.Fatalf("-h: usage does not start with %q, or names the binary's path:\n%s", "usage: "+command, stdout)
			}
			code, stdout, stderr = runCmd(t, bin, command, "-no-such-flag")
			if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "-no-such-flag") {
				t.Fatalf("-no-such-flag: exit %d, stdout %q, stderr %q", code, stdout, stderr)
			}
		})
	}
	for _, command := range withSubcommands {
		code, stdout, stderr := runCmd(t, bin, command, "frobnicate")
		if code != 2 || stdout != "" || !strings.Contains(stderr, `unknown command "frobnicate"`) {
			t.Errorf("%s frobnicate: exit %d, stdout %q, stderr %q", command, code, stdout, stderr)
		}
		if code, stdout, _ := runCmd(t, bin, command, "help"); code != 0 || !strings.HasPrefix(stdout, "usage: "+command+" ") {
			t.Errorf("%s help: exit %d, stdout %q", command, code, stdout)
		}
	}
	if _, stdout, _ := runCmd(t, bin, "settle", "-h"); !strings.Contains(stdout, "settle reconcile") {
		t.Errorf("settle -h does not mention reconcile:\n%s", stdout)
	}
}

// flagLine is a flag in flag.PrintDefaults' output.
var flagLine = regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)

// docFlag is a flag in a row of docs/cli.md: the row's first cell.
var docFlag = regexp.MustCompile("(?m)^\\| `-([a-z0-9-]+)")

// TestDocsListEveryFlag: docs/cli.md has a section per command and
// subcommand whose table lists exactly the flags its -h lists: none
// missing, none stale.
func TestDocsListEveryFlag(t *testing.T) {
	bin := buildAll(t)
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "cli.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	for _, part := range strings.Split(string(doc), "\n### `")[1:] {
		name, body, _ := strings.Cut(part, "`")
		sections[name] = body
	}
	for _, command := range commands {
		if slices.Contains(withSubcommands, command) && command != "settle" {
			continue // lists its subcommands, which have the flags
		}
		_, usage, _ := runCmd(t, bin, command, "-h")
		var shown, documented []string
		for _, m := range flagLine.FindAllStringSubmatch(usage, -1) {
			shown = append(shown, m[1])
		}
		if len(shown) == 0 && !slices.Contains(withoutFlags, command) {
			t.Errorf("%s -h lists no flags:\n%s", command, usage)
		}
		body, ok := sections[command]
		if !ok {
			t.Errorf("docs/cli.md has no section ### `%s`", command)
			continue
		}
		for _, m := range docFlag.FindAllStringSubmatch(body, -1) {
			documented = append(documented, m[1])
		}
		slices.Sort(shown)
		slices.Sort(documented)
		if !slices.Equal(shown, documented) {
			t.Errorf("%s: -h lists %v, docs/cli.md lists %v", command, shown, documented)
		}
	}
}
