package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tapswitch/tapswitch/internal/cli"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/settlement/transit"

	"github.com/tapswitch/tapswitch/switch/acquirer"
	"github.com/tapswitch/tapswitch/switch/node"
	"github.com/tapswitch/tapswitch/switch/vault"
)

// keysUsage lists tapctl keys' subcommands: each creates one of the
// switch's secret files, mode 0600, and never replaces an existing one
// (docs/keys.md).
const keysUsage = `usage: tapctl keys COMMAND [flags] FILE

commands:
  init              the switch's key file (key_file, switchd -keys)
  init-acquirers    the acquirers' keys (acquirer_keys_file, switchd -acquirer-keys)
  init-operators    the transit operators' master keys (settle -operator-keys)
  init-admin-token  the admin bearer token (admin_token_file, tapctl -admin-token-file)

Each writes FILE with mode 0600 and never replaces an existing one.
Run 'tapctl keys COMMAND -h' for the flags (docs/cli.md).
`

var keysCommands = []string{"init", "init-acquirers", "init-operators", "init-admin-token"}

// runKeys is tapctl keys: create the switch's secret files.
func runKeys(args []string, stdout, stderr io.Writer) int {
	i, code := cli.Dispatch("tapctl keys", keysUsage, keysCommands, args, stdout, stderr)
	if i < 0 {
		return code
	}
	sub := keysCommands[i]
	set := cli.New("tapctl keys "+sub, "Creates FILE, mode 0600; an existing FILE is never replaced.", stdout, stderr)
	set.AlsoUsage("tapctl keys " + sub + " [flags] FILE")
	var config *string
	switch sub {
	case "init-acquirers":
		config = set.String("config", "", "switch configuration `FILE` naming the acquirer registry (default: the built-in configs/switch.yaml)")
	case "init-operators":
		config = set.String("config", "", "switch configuration `FILE` naming the issuers file, whose transit members have operator codes (default: the built-in configs/switch.yaml)")
	}
	path, err := set.ParseArg(args[1:], "FILE")
	if err != nil {
		return parseFailed(set, err, stderr)
	}
	var create func() (string, error)
	switch sub {
	case "init":
		create = func() (string, error) { return "index, token-master and v1 keys", vault.GenerateKeyringFile(path) }
	case "init-acquirers":
		create = func() (string, error) { return createAcquirerKeys(*config, path) }
	case "init-operators":
		create = func() (string, error) { return createOperatorKeys(*config, path) }
	case "init-admin-token":
		create = func() (string, error) { return "a 64-character admin token", node.CreateAdminTokenFile(path) }
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

// createOperatorKeys writes a master key for the operator code of every
// transit member of the issuers file the switch configuration names.
func createOperatorKeys(configPath, path string) (string, error) {
	cfg, err := node.LoadConfig(configPath)
	if err != nil {
		return "", err
	}
	list, _, err := cfg.Network()
	if err != nil {
		return "", err
	}
	var codes, names []string
	for _, is := range list {
		if is.Kind == issuers.KindTransit {
			codes = append(codes, is.Operator)
			names = append(names, is.Operator+" "+is.ID)
		}
	}
	if len(codes) == 0 {
		return "", errors.New("the issuers file has no transit member: no operator to make a key for")
	}
	if err := transit.CreateMasterKeysFile(path, codes); err != nil {
		return "", err
	}
	return fmt.Sprintf("master keys of %d operators (%s); give each operator's host its own line", len(codes), strings.Join(names, ", ")), nil
}
