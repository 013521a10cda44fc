package load

import (
	"os"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// A command name with a space and a parenthesis; utime 250, stime 50.
	line := "4242 (sw (itch) d) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 50 0 0 20 0 9 0 100 0 0\n"
	got, err := parseProcStat(line)
	if err != nil || got != 3*time.Second {
		t.Fatalf("parseProcStat = %v, %v; want 3s", got, err)
	}
	for _, bad := range []string{"", "4242 (x) S 1 2", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 x 50 0"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("parseProcStat(%q) did not fail", bad)
		}
	}
}

func TestProcessCPUOfThisProcess(t *testing.T) {
	deadline := time.Now().Add(60 * time.Millisecond)
	for n := 0; time.Now().Before(deadline); n++ {
		_ = n * n
	}
	got, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	self := SelfCPU()
	if got <= 0 || self <= 0 || got > self+50*time.Millisecond {
		t.Fatalf("ProcessCPU %v, SelfCPU %v", got, self)
	}
	if _, err := ProcessCPU(0); err == nil {
		t.Fatal("CPU of process 0")
	}
}
