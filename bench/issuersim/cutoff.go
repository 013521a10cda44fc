package issuersim

import "github.com/tapswitch/tapswitch/switch/journal"

// Cutoff is the local time of day at which the issuer's business day
// closes. It is the network's rule (journal.Cutoff): a simulated issuer
// must label a posting with the same business day as the switch, or every
// posting around the cut-off is a reconciliation break.
type Cutoff = journal.Cutoff

// DefaultCutoff is the network's default, 23:00 Asia/Shanghai.
func DefaultCutoff() Cutoff { return journal.DefaultCutoff() }

// ParseCutoff reads "HH:MM" in a time zone.
func ParseCutoff(hhmm, zone string) (Cutoff, error) { return journal.ParseCutoff(hhmm, zone) }
