package load

import (
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progressInterval is how often the bar is redrawn.
const progressInterval = 250 * time.Millisecond

// progress counts answers for the bar. Recording is two atomic adds; the
// bar is drawn by its own goroutine, never on a request's path.
type progress struct {
	answered atomic.Int64
	failed   atomic.Int64
	bar      *progressbar.ProgressBar
	stop     chan struct{}
	wg       sync.WaitGroup
}

func (p *progress) done(failed bool) {
	p.answered.Add(1)
	if failed {
		p.failed.Add(1)
	}
}

// start draws a bar on out (nil: none) over the run's whole time, its
// description the phase, the TPS of the last interval and the errors.
func (p *progress) start(out io.Writer, start, measureFrom, end time.Time) {
	if out == nil {
		return
	}
	total := end.Sub(start).Milliseconds()
	p.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(out),
		progressbar.OptionSetWidth(30),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetElapsedTime(false),
		progressbar.OptionThrottle(progressInterval),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	)
	p.stop = make(chan struct{})
	p.wg.Go(func() {
		tick := time.NewTicker(progressInterval)
		defer tick.Stop()
		last, lastAt := int64(0), start
		for {
			select {
			case <-p.stop:
				return
			case now := <-tick.C:
				n := p.answered.Load()
				tps := float64(n-last) / now.Sub(lastAt).Seconds()
				last, lastAt = n, now
				phase := "measuring"
				if now.Before(measureFrom) {
					phase = "warm-up  "
				}
				p.bar.Describe(fmt.Sprintf("%s %7.0f TPS  %d errors", phase, tps, p.failed.Load()))
				p.bar.Set64(min(now.Sub(start).Milliseconds(), total))
			}
		}
	})
}

func (p *progress) finish() {
	if p.bar == nil {
		return
	}
	close(p.stop)
	p.wg.Wait()
	p.bar.Finish()
}
