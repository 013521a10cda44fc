package link_test

import (
	"testing"

	"github.com/tapswitch/tapswitch/bench/issuersim"
	"github.com/tapswitch/tapswitch/iso8583"
	"github.com/tapswitch/tapswitch/router/link"
)

// TestSTANBlocksDisjointTowardOneIssuer: two cluster nodes' links to one
// simulated issuer send purchases in the same second (the same DE7): with
// blocks 1 and 2 every purchase is a new posting at the issuer, each
// node's STANs in its own block. The control run gives both links today's
// single-node numbering: the issuer then takes the second node's
// purchases for retries of the first's (approved, nothing posted), which
// is the collision the blocks prevent, so the check can fail.
func TestSTANBlocksDisjointTowardOneIssuer(t *testing.T) {
	const perNode = 20
	t.Run("blocks", func(t *testing.T) {
		postings, stans := sendFromTwoNodes(t, 1, 2, perNode)
		if postings != 2*perNode {
			t.Fatalf("issuer posted %d of %d purchases", postings, 2*perNode)
		}
		for node, block := range []string{"1", "2"} {
			for _, s := range stans[node] {
				if s[:1] != block {
					t.Fatalf("node %d (block %s) sent STAN %s", node+1, block, s)
				}
			}
		}
	})
	t.Run("control: one space collides", func(t *testing.T) {
		if postings, _ := sendFromTwoNodes(t, 0, 0, perNode); postings != perNode {
			t.Fatalf("issuer posted %d purchases from two links numbering alike, want %d (the collision)", postings, perNode)
		}
	})
}

// sendFromTwoNodes sends n purchases of one card (amounts 1.00 to n.00, one
// DE7) through a link of block a, then the same n through a link of block
// b, to one issuer: two phones' taps of one card and amount in one second.
// It returns the issuer's postings and the STANs each link sent.
func sendFromTwoNodes(t *testing.T, a, b, n int) (postings int, stans [2][]string) {
	ln := listen(t, "127.0.0.1:0")
	sim := startSim(t, ln, issuersim.Faults{})
	for node, block := range []int{a, b} {
		cfg := testConfig(ln.Addr().String())
		cfg.STANBlock = block
		l := startLink(t, cfg)
		waitUp(t, l, true)
		for i := range n {
			req := purchase(t, panCredit, iso8583.Amount(100*(i+1)))
			resp, err := l.Exchange(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			if rc := field(resp, iso8583.FieldResponseCode); rc != iso8583.RCApproved {
				t.Fatalf("node %d purchase %d: rc %s", node+1, i, rc)
			}
			stans[node] = append(stans[node], field(req, iso8583.FieldSTAN))
		}
	}
	return len(sim.Ledger()), stans
}

// TestSTANBlockBounds: a block outside 0..STANBlocksMax is refused.
func TestSTANBlockBounds(t *testing.T) {
	for _, block := range []int{-1, link.STANBlocksMax + 1} {
		cfg := testConfig("127.0.0.1:1")
		cfg.STANBlock = block
		if _, err := link.New(cfg); err == nil {
			t.Fatalf("STAN block %d accepted", block)
		}
	}
}
