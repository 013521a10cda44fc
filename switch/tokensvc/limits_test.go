package tokensvc

import (
	"testing"
	"time"
)

func TestLimitVerdict(t *testing.T) {
	l := limit{name: "card", max: 5, window: 24 * time.Hour}
	start := time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC)
	now := start.Add(10 * time.Hour)
	tests := []struct {
		name      string
		prev, cur int
		ok        bool
		wait      time.Duration
	}{
		{"empty", 0, 0, true, 0},
		{"one left", 0, 4, true, 0},
		{"one left across the edge", 3, 1, true, 0},
		{"full in this window", 0, 5, false, 38 * time.Hour},
		{"full across the edge: wait for this window's end", 4, 1, false, 14 * time.Hour},
		{"previous window alone full", 5, 0, false, 14 * time.Hour},
		{"over, both", 5, 7, false, 38 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, wait := limitVerdict(l, tt.prev, tt.cur, start, now)
			if ok != tt.ok || wait != tt.wait {
				t.Fatalf("limitVerdict(%d, %d) = %v, %v; want %v, %v", tt.prev, tt.cur, ok, wait, tt.ok, tt.wait)
			}
		})
	}
}

func TestClientAddress(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:5000":                  "127.0.0.1",
		"[::ffff:10.1.2.3]:80":            "10.1.2.3",
		"[2001:db8:1:2:aaaa::1]:443":      "2001:db8:1:2::/64",
		"[2001:db8:1:2:bbbb:cccc::9]:443": "2001:db8:1:2::/64",
		"pipe":                            "pipe",
	} {
		if got := clientAddress(in); got != want {
			t.Errorf("clientAddress(%q) = %q, want %q", in, got, want)
		}
	}
}
