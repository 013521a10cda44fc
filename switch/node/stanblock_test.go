package node

import "testing"

// TestClusterSTANBlock: a node alone numbers its issuer STANs over the whole
// range (block 0) whatever stan_block says; a cluster node must name its
// own block, 1 to 9.
func TestClusterSTANBlock(t *testing.T) {
	alone := ClusterConfig{STANBlock: 4}
	if b, err := alone.linkSTANBlock(); err != nil || b != 0 {
		t.Fatalf("node alone: block %d, %v; want 0", b, err)
	}
	urls := []string{"nats://127.0.0.1:4222"}
	for _, bad := range []int{0, -1, 10} {
		if _, err := (ClusterConfig{URLs: urls, STANBlock: bad}).linkSTANBlock(); err == nil {
			t.Fatalf("cluster node with stan_block %d accepted", bad)
		}
	}
	if b, err := (ClusterConfig{URLs: urls, STANBlock: 3}).linkSTANBlock(); err != nil || b != 3 {
		t.Fatalf("cluster node with stan_block 3: block %d, %v", b, err)
	}
}
