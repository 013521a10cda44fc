// Package pebblelog is the logger the switch's Pebble stores use. Pebble's
// default writes routine lines ("Found 0 WALs", WAL replay) to the standard
// logger on every open, which would interleave with the switch's structured
// log; the switch keeps Pebble's errors and drops its chatter.
package pebblelog

import "log"

// Quiet drops informational lines and keeps errors and fatal errors.
var Quiet quiet

type quiet struct{}

func (quiet) Infof(string, ...any) {}

func (quiet) Errorf(format string, args ...any) { log.Printf("pebble: "+format, args...) }

func (quiet) Fatalf(format string, args ...any) { log.Fatalf("pebble: "+format, args...) }
