package cluster

import (
	"testing"

	"github.com/tapswitch/tapswitch/switch/journal"
)

// TestClaimValueRoundTrip: a claim and an answer read back from their
// values are what was written; truncated, versioned-off or inconsistent
// values are refused.
func TestClaimValueRoundTrip(t *testing.T) {
	digest := [32]byte{1, 2, 3, 31: 9}
	for _, r := range []claimRecord{
		{digest: digest, node: "node-a"},
		{answered: true, digest: digest, node: "node-b", rc: "00", authCode: "123456", issuer: "ICBC"},
		{answered: true, digest: digest, node: "n", rc: "91"},
	} {
		got, err := decodeClaim(encodeClaim(r))
		if err != nil || got != r {
			t.Fatalf("%+v: got %+v, %v", r, got, err)
		}
	}
	v := encodeClaim(claimRecord{answered: true, digest: digest, node: "node-a", rc: "00", authCode: "1"})
	pendingWithCode := encodeClaim(claimRecord{digest: digest, node: "node-a"})
	pendingWithCode = append(pendingWithCode[:len(pendingWithCode)-3], 2, '0', '0', 0, 0)
	for _, bad := range [][]byte{nil, v[:len(v)-1], append([]byte{2}, v[1:]...), append(v, 0), pendingWithCode,
		encodeClaim(claimRecord{answered: true, digest: digest, node: ""})} {
		if _, err := decodeClaim(bad); err == nil {
			t.Fatalf("value %x accepted", bad)
		}
	}
}

// TestUsageValueRoundTrip: a stand-in usage read back is what was
// written; another length, version or a negative amount is refused.
func TestUsageValueRoundTrip(t *testing.T) {
	for _, u := range []usageRecord{{}, {count: 5, amount: 100000}, {count: 1 << 40, amount: 1 << 62}} {
		got, err := decodeUsage(encodeUsage(u))
		if err != nil || got != u {
			t.Fatalf("%+v: got %+v, %v", u, got, err)
		}
	}
	v := encodeUsage(usageRecord{count: 1, amount: 1})
	for _, bad := range [][]byte{nil, v[:len(v)-1], append([]byte{2}, v[1:]...), encodeUsage(usageRecord{count: 1, amount: -1})} {
		if _, err := decodeUsage(bad); err == nil {
			t.Fatalf("value %x accepted", bad)
		}
	}
}

// TestDuplicateKeyIsABucketKey: any printable terminal ID makes a key the
// bucket takes, one per (terminal, STAN, DE7).
func TestDuplicateKeyIsABucketKey(t *testing.T) {
	a := duplicateKey(journal.Key{TerminalID: "T 1/*>.", STAN: "000001", TransmissionTime: "1204083015"})
	b := duplicateKey(journal.Key{TerminalID: "T 1/*>", STAN: "000001", TransmissionTime: "1204083015"})
	if a == b {
		t.Fatalf("two terminals, one key %q", a)
	}
	for _, c := range a {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c == '.') {
			t.Fatalf("key %q has %q", a, c)
		}
	}
}
