package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/node"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// keysUsage lists tapctl keys' subcommands: each creates one of the
// switch's secret files, mode 0600, and never replaces an existing one
// (docs/keys.md).
const keysUsage = `usage: tapctl keys init FILE                           the switch's key file (key_file, switchd -keys)
       tapctl keys init-acquirers [-config FILE] FILE  the acquirers' keys (acquirer_keys_file, switchd -acquirer-keys)
       tapctl keys init-admin-token FILE               the admin bearer token (admin_token_file, tapctl rotate -token-file)`

// runKeys is tapctl keys: create the switch's secret files.
func runKeys(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, keysUsage)
		return 2
	}
	sub := args[0]
	set := flag.NewFlagSet("tapctl keys "+sub, flag.ContinueOnError)
	set.SetOutput(stderr)
	set.Usage = func() { fmt.Fprintln(stderr, keysUsage) }
	var config *string
	if sub == "init-acquirers" {
		config = set.String("config", "", "switch configuration `FILE` naming the acquirer registry (default: the built-in configs/switch.yaml)")
	}
	if err := set.Parse(args[1:]); err != nil {
		return 2
	}
	if set.NArg() != 1 {
		fmt.Fprintf(stderr, "tapctl keys %s: want one FILE\n%s\n", sub, keysUsage)
		return 2
	}
	path := set.Arg(0)
	var create func() (string, error)
	switch sub {
	case "init":
		create = func() (string, error) { return "index, token-master and v1 keys", vault.GenerateKeyringFile(path) }
	case "init-acquirers":
		create = func() (string, error) { return createAcquirerKeys(*config, path) }
	case "init-admin-token":
		create = func() (string, error) { return "a 64-character admin token", node.CreateAdminTokenFile(path) }
	default:
		fmt.Fprintf(stderr, "tapctl keys: unknown subcommand %q\n%s\n", sub, keysUsage)
		return 2
	}
	if err := keyFileDir(path); err != nil {
		fmt.Fprintf(stderr, "tapctl keys %s: %v\n", sub, err)
		return 1
	}
	what, err := create()
	if errors.Is(err, fs.ErrExist) {
		fmt.Fprintf(stderr, "tapctl keys %s: %s already exists; not replaced (losing keys in use loses the data and terminals that depend on them)\n", sub, path)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "tapctl keys %s: %v\n", sub, err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s (mode 0600): %s; back it up, never commit it\n", path, what)
	return 0
}

// keyFileDir makes the key file's directory (0700) when it is missing, so
// that `tapctl keys init ./data/vault.keys` works on a fresh clone.
func keyFileDir(path string) error {
	return os.MkdirAll(filepath.Dir(path), 0o700)
}

// createAcquirerKeys writes a key for every acquirer of the registry the
// switch configuration names.
func createAcquirerKeys(configPath, path string) (string, error) {
	cfg, err := node.LoadConfig(configPath)
	if err != nil {
		return "", err
	}
	list, _, err := cfg.Network()
	if err != nil {
		return "", err
	}
	reg, err := cfg.Registry(list)
	if err != nil {
		return "", err
	}
	ids := reg.Acquirers()
	if err := acquirer.CreateKeysFile(path, ids); err != nil {
		return "", err
	}
	return fmt.Sprintf("keys of %d acquirers (%s); give each acquirer's host its own line", len(ids), strings.Join(ids, ", ")), nil
}
