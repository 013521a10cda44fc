package node

import (
	"context"
	"fmt"
	"time"

	"github.com/tapswitch/tapswitch/router/bintable"
	"github.com/tapswitch/tapswitch/router/issuers"
	"github.com/tapswitch/tapswitch/router/link"
	"github.com/tapswitch/tapswitch/switch/topup"
)

// topUpTerminalPrefix and the operator code name each operator's in-app
// top-up terminal in configs/acquirers.yaml (TOPU0010 is BJT's).
const topUpTerminalPrefix = "TOPU"

// openTopUps builds the top-up service over the pipeline and the operators'
// links, finishes the pairs a crash left half done, and hands it to the
// token API. An operator without a transit BIN or a registered top-up
// terminal gets no top-ups (its cards still clear offline).
func (n *Node) openTopUps() error {
	links := map[string]*link.Link{}
	for _, l := range n.links {
		links[l.IssuerID()] = l
	}
	ops := map[string]topup.Operator{}
	for _, is := range n.Issuers {
		if is.Kind != issuers.KindTransit {
			continue
		}
		bin := n.Table.PrefixOf(is.ID, bintable.ProductTransit)
		terminal := topUpTerminalPrefix + is.Operator
		if _, ok := n.senders.Originated(terminal); !ok || bin == "" || links[is.ID] == nil {
			n.log.Warn().Str("operator", is.ID).Msg("no top-ups for this operator: it needs a transit BIN, a link and top-up terminal " + terminal)
			continue
		}
		ops[is.ID] = topup.Operator{ID: is.ID, Code: is.Operator, Institution: is.Institution, BIN: bin,
			Terminal: terminal, Link: links[is.ID]}
	}
	svc, err := topup.New(topup.Config{
		Journal: n.Journal, Bank: n.Pipeline, Senders: n.senders, Operators: ops, Keys: n.Vault.Keys,
		NodeID: n.cfg.NodeID, Institution: n.cfg.Institution, Now: time.Now,
		Log: n.log.With().Str("component", "topup").Logger(), LoadTimeout: 5 * time.Second, Sent: link.Sent,
	})
	if err != nil {
		return err
	}
	finished, err := svc.Recover(context.Background())
	if err != nil {
		return fmt.Errorf("top-up recovery: %w", err)
	}
	if finished > 0 {
		n.log.Warn().Int("top_ups", finished).Msg("finished top-ups a crash left half done")
	}
	n.Tokens.SetTopUps(svc)
	return nil
}
