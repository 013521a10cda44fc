package terminal

import (
	"sync"
	"testing"
	"time"
)

// TestWorkersReuseGoroutines: tasks run one after another share one
// goroutine; tasks that overlap get one each.
func TestWorkersReuseGoroutines(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	w := newWorkers(stop)
	for range 100 {
		done := make(chan struct{})
		w.run(func() { close(done) })
		<-done
		waitIdle(t, w, 1)
	}
	if got := w.started.Load(); got != 1 {
		t.Fatalf("%d goroutines started for 100 tasks in sequence, want 1", got)
	}
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 10 {
		wg.Add(1)
		w.run(func() { defer wg.Done(); <-release })
	}
	close(release)
	wg.Wait()
	if got := w.started.Load(); got != 10 {
		t.Fatalf("%d goroutines started for 10 overlapping tasks, want 10 (one reused)", got)
	}
}

// TestWorkersBoundIdleAndStop: no more than idleWorkersMax stay parked,
// and they all end when stop is closed.
func TestWorkersBoundIdleAndStop(t *testing.T) {
	stop := make(chan struct{})
	w := newWorkers(stop)
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range idleWorkersMax + 50 {
		wg.Add(1)
		w.run(func() { defer wg.Done(); <-release })
	}
	close(release)
	wg.Wait()
	waitIdle(t, w, idleWorkersMax)
	close(stop)
	waitIdle(t, w, 0)
	ran := make(chan struct{})
	w.run(func() { close(ran) })
	<-ran
}

func waitIdle(t *testing.T, w *workers, want int32) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for w.idle.Load() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d idle workers, want %d", w.idle.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}
