// Command wallet is the phone wallet: it binds a card to this phone through
// the switch's token service in four steps and keeps the token and its key
// in a wallet file that termsim taps from. See 'wallet help'.
package main

import (
	"os"

	"github.com/tapswitch/tapswitch/bench/walletcli"
)

func main() {
	os.Exit(walletcli.Run(os.Args[1:], os.Stdout, os.Stderr))
}
