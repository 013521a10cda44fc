// Command termsim is a POS terminal simulator: it taps wallet tokens at the
// switch over TCP. See 'termsim help'.
package main

import (
	"os"

	"github.com/tapswitch/tapswitch/bench/termsim"
)

func main() {
	os.Exit(termsim.Run(os.Args[1:], os.Stdout, os.Stderr))
}
