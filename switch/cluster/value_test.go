package cluster

import (
	"testing"

	"github.com/tapswitch/tapswitch/switch/cryptogram"
)

// TestWindowValueRoundTrip: a window read back from its value is the
// window, and a value of another length or version is refused.
func TestWindowValueRoundTrip(t *testing.T) {
	var w cryptogram.Window
	for _, c := range []uint32{3, 1, 2, 700, 1500, 1499} {
		if err := w.Check(c); err != nil {
			t.Fatalf("counter %d: %v", c, err)
		}
		w = w.Accept(c)
		got, err := decodeWindow(encodeWindow(w))
		if err != nil || got != w {
			t.Fatalf("after %d: got %+v, %v; want %+v", c, got, err, w)
		}
	}
	v := encodeWindow(w)
	for _, bad := range [][]byte{nil, v[:len(v)-1], append([]byte{2}, v[1:]...)} {
		if _, err := decodeWindow(bad); err == nil {
			t.Fatalf("value %x accepted", bad)
		}
	}
}
