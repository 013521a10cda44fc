// Command tapctl is the operator's tool for a running switch, over its admin
// listener.
//
//	tapctl rotate           # reload the key file, re-seal the vault, follow it
//	tapctl rotate -status   # only show where a rotation is
//	tapctl rotate -admin 10.0.0.5:8584 -admin-token-file /etc/tapswitch/admin.token
//	tapctl settle-keys -keys /etc/tapswitch/vault.keys -out settle.keys
//	tapctl close-day                             # switchd -dev only: close and seal today's business day now
//	tapctl keys init /etc/tapswitch/vault.keys                # a new switch key file
//	tapctl keys init-acquirers /etc/tapswitch/acquirer.keys   # a key per acquirer of the registry
//	tapctl keys init-operators /etc/tapswitch/operator.keys   # a master key per transit operator (settle -operator-keys)
//	tapctl keys init-admin-token /etc/tapswitch/admin.token   # a bearer token for the admin listener
//	tapctl journal restore -nats nats://10.0.0.7:4222 -node node-2 -dir /var/lib/tapswitch/node-2/journal
//
// close-day exists so that settlement can be tried in minutes (README,
// "Settling a day"): only a switch started with -dev serves it; any other
// answers 404, and its business day closes at its cut-off.
//
// -admin is the switch's admin (operator) listener, never its public one
// (default 127.0.0.1:8584, switchd -dev's); -admin-token-file holds the
// bearer token of the switch's admin_token_file, which an admin listener
// off loopback requires (docs/keys.md).
//
// rotate POSTs /admin/rotate and polls GET /admin/rotate until the re-seal
// ends; it rotates the data keys only (the index key and the token master
// never change). docs/keys.md describes the whole rotation. Exit 0 when it
// completed, 1 when it failed or could not be followed, 2 on bad usage.
//
// keys creates the switch's secret files (keys.go), mode 0600, and never
// replaces one: losing a key in use loses the PANs sealed under it.
//
// settle-keys writes settle's key file from the switch's: its data key
// lines and nothing else (mode 0600, replaced atomically), for the settle
// host after a rotation added a version.
package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/tapswitch/tapswitch/internal/cli"
	"github.com/tapswitch/tapswitch/switch/node"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// responseBytesMax bounds what tapctl reads of one answer.
const responseBytesMax = 1 << 20

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: tapctl COMMAND [flags]

commands:
  rotate       reload the switch's key file, re-seal the vault, follow it
               tapctl rotate [-admin 127.0.0.1:8584] [-status]
  settle-keys  write settle's key file (data keys only) from the switch's
               tapctl settle-keys -keys SWITCH_KEY_FILE -out SETTLE_KEY_FILE
  close-day    switchd -dev only: close and seal today's business day now
               tapctl close-day [-admin 127.0.0.1:8584]
  keys         create the switch's secret files (0600, never replacing one)
               tapctl keys init|init-acquirers|init-operators|init-admin-token FILE
  journal      cluster: rebuild a lost node's journal from the journal stream
               tapctl journal restore -nats URLS -node ID -dir DIR

Run 'tapctl COMMAND -h' for the flags (docs/cli.md).
`

// DefaultAdmin is the switch's admin listener by default (switchd -dev's).
const DefaultAdmin = "127.0.0.1:8584"

var commands = []string{"rotate", "settle-keys", "close-day", "keys", "journal"}

func run(args []string, stdout, stderr io.Writer) int {
	i, code := cli.Dispatch("tapctl", usage, commands, args, stdout, stderr)
	if i < 0 {
		return code
	}
	return []func([]string, io.Writer, io.Writer) int{runRotate, runSettleKeys, runCloseDay, runKeys, runJournal}[i](args[1:], stdout, stderr)
}

// parseFailed is the exit status of a failed parse: 0 for -h, else 2 after
// one line on stderr.
func parseFailed(fs *cli.FlagSet, err error, stderr io.Writer) int {
	if errors.Is(err, cli.ErrHelp) {
		return cli.ExitOK
	}
	fmt.Fprintf(stderr, "%s: %v (%s -h lists the flags)\n", fs.Name(), err, fs.Name())
	return cli.ExitUsage
}

// runRotate is tapctl rotate: start a rotation (or follow the one running)
// to its end, or with -status only show where it is.
func runRotate(args []string, stdout, stderr io.Writer) int {
	fs := cli.New("tapctl rotate", "Reloads the switch's key file, re-seals the vault under the new data key and follows it (docs/keys.md).", stdout, stderr)
	admin := fs.String("admin", DefaultAdmin, "the switch's admin (operator) listener `HOST:PORT`")
	tokenFile := fs.String("admin-token-file", "", "`FILE` holding the admin bearer token (the switch's admin_token_file)")
	status := fs.Bool("status", false, "show the rotation's status and exit; start nothing")
	every := fs.Duration("every", time.Second, "poll `interval`")
	wait := fs.Duration("wait", time.Hour, "give up following after this `long` (the re-seal goes on in the switch)")
	timeout := fs.Duration("timeout", time.Minute, "bound on one HTTP request (POST counts the vault's records)")
	fs.Alias("token-file", "admin-token-file")
	fs.Alias("request-timeout", "timeout")
	if err := fs.Parse(args); err != nil {
		return parseFailed(fs, err, stderr)
	}
	if *admin == "" || *every <= 0 || *wait <= 0 || *timeout <= 0 {
		fmt.Fprintln(stderr, "tapctl rotate: need -admin HOST:PORT, and positive -every, -wait, -timeout")
		return cli.ExitUsage
	}
	c := client{http: &http.Client{Timeout: *timeout}, url: "http://" + *admin + "/admin/rotate", out: stdout}
	if *tokenFile != "" {
		b, err := os.ReadFile(*tokenFile)
		if err != nil {
			fmt.Fprintf(stderr, "tapctl rotate: -admin-token-file: %v\n", err)
			return cli.ExitUsage
		}
		c.token = strings.TrimSpace(string(b))
	}
	var err error
	if *status {
		err = c.show()
	} else {
		err = c.rotate(*every, *wait)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tapctl rotate: %v\n", err)
		return 1
	}
	return 0
}

// runSettleKeys is tapctl settle-keys: settle's data-keys-only file from
// the switch's key file (docs/keys.md).
func runSettleKeys(args []string, stdout, stderr io.Writer) int {
	fs := cli.New("tapctl settle-keys", "Writes settle's key file: the data key lines of the switch's, nothing else (mode 0600).", stdout, stderr)
	from := fs.String("keys", "", "the switch's key `FILE` (index, token-master and v<N> lines)")
	out := fs.String("out", "", "settle's key `FILE` to write: the v<N> lines only")
	if err := fs.Parse(args); err != nil {
		return parseFailed(fs, err, stderr)
	}
	if *from == "" || *out == "" {
		fmt.Fprintln(stderr, "tapctl settle-keys: need -keys FILE and -out FILE")
		return cli.ExitUsage
	}
	if err := vault.WriteDataKeysFile(*from, *out); err != nil {
		fmt.Fprintf(stderr, "tapctl settle-keys: %v\n", err)
		return 1
	}
	keys, err := vault.LoadDataKeysFile(*out)
	if err != nil {
		fmt.Fprintf(stderr, "tapctl settle-keys: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s: data keys %v, current v%d; no index key, no token master\n",
		*out, keys.Versions(), keys.CurrentVersion())
	return 0
}

type client struct {
	http  *http.Client
	url   string
	token string // "": none sent
	out   io.Writer
}

// rotate starts a rotation, or follows the one already running, to its end.
func (c client) rotate(every, wait time.Duration) error {
	code, st, msg, err := c.call(http.MethodPost)
	switch {
	case err != nil:
		return err
	case code == http.StatusConflict && st.Running:
		fmt.Fprintln(c.out, "a rotation is already running; following it")
	case code != http.StatusAccepted:
		return fmt.Errorf("switch answered %d: %s", code, msg)
	default:
		fmt.Fprintf(c.out, "rotation started: keyring %s; records %s\n", keyring(st.Keyring), counts(st.Versions))
	}
	deadline := time.Now().Add(wait)
	last := -1
	for st.Running {
		if time.Now().After(deadline) {
			return fmt.Errorf("still running after %v (%d/%d re-sealed); it goes on in the switch: tapctl rotate -status", wait, st.Done, st.Total)
		}
		time.Sleep(every)
		if code, st, msg, err = c.call(http.MethodGet); err != nil {
			return err
		} else if code != http.StatusOK {
			return fmt.Errorf("switch answered %d: %s", code, msg)
		}
		if st.Done != last && st.Total > 0 {
			fmt.Fprintf(c.out, "re-sealed %d/%d\n", st.Done, st.Total)
			last = st.Done
		}
	}
	if st.Error != "" {
		return fmt.Errorf("re-seal failed after %d records: %s", st.Done, st.Error)
	}
	fmt.Fprintf(c.out, "rotation complete: %d records re-sealed; keyring %s; records %s\n", st.Done, keyring(st.Keyring), counts(st.Versions))
	return nil
}

func (c client) show() error {
	code, st, msg, err := c.call(http.MethodGet)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("switch answered %d: %s", code, msg)
	}
	state := "idle"
	switch {
	case st.Running:
		state = fmt.Sprintf("running, %d/%d re-sealed", st.Done, st.Total)
	case st.Error != "":
		state = fmt.Sprintf("failed after %d re-sealed: %s", st.Done, st.Error)
	case !st.Finished.IsZero():
		state = fmt.Sprintf("completed %s, %d re-sealed", st.Finished.Format(time.RFC3339), st.Done)
	}
	fmt.Fprintf(c.out, "rotation %s; keyring %s; records %s\n", state, keyring(st.Keyring), counts(st.Versions))
	return nil
}

// call makes one request and decodes the status, or the error message of a
// refusal.
func (c client) call(method string) (code int, st node.RotationStatus, msg string, err error) {
	req, err := http.NewRequest(method, c.url, nil)
	if err != nil {
		return 0, st, "", err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, st, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, responseBytesMax))
	if err != nil {
		return 0, st, "", fmt.Errorf("reading the answer: %w", err)
	}
	var refusal struct {
		Error  string               `json:"error"`
		Status *node.RotationStatus `json:"status"`
	}
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted:
		err = json.Unmarshal(body, &st)
	case json.Unmarshal(body, &refusal) == nil && refusal.Error != "":
		msg = refusal.Error
		if refusal.Status != nil {
			st = *refusal.Status
		}
	default:
		msg = strings.TrimSpace(string(bytes.ToValidUTF8(body[:min(len(body), 200)], nil)))
	}
	if err != nil {
		return 0, st, "", errors.New("the answer is not a rotation status: is -admin the switch's admin listener?")
	}
	return resp.StatusCode, st, msg, nil
}

func keyring(versions []uint16) string {
	if len(versions) == 0 {
		return "(none)"
	}
	names := make([]string, len(versions))
	for i, v := range versions {
		names[i] = fmt.Sprintf("v%d", v)
	}
	return strings.Join(names, ",") + " (current " + names[len(names)-1] + ")"
}

func counts(versions map[string]int) string {
	if len(versions) == 0 {
		return "none"
	}
	names := slices.SortedFunc(maps.Keys(versions), func(a, b string) int {
		return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b)) // v2 before v10
	})
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s %d", name, versions[name])
	}
	return strings.Join(parts, ", ")
}
