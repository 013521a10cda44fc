package load

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicksPerSecond is USER_HZ, the unit of utime and stime in
// /proc/PID/stat: 100 on every Linux the project runs on (getconf CLK_TCK).
// It makes a process's CPU figure exact to 10 ms, which over a run of
// seconds is well under 1%.
const clockTicksPerSecond = 100

// ProcessCPU is the user + system CPU time process pid has used so far,
// all its threads together, from /proc/PID/stat.
func ProcessCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("CPU of process %d: %w", pid, err)
	}
	return parseProcStat(string(data))
}

// parseProcStat reads fields 14 (utime) and 15 (stime) of a /proc/PID/stat
// line. Field 2, the command name in parentheses, may hold spaces and
// parentheses itself, so fields are counted from the last ')'.
func parseProcStat(line string) (time.Duration, error) {
	end := strings.LastIndexByte(line, ')')
	if end < 0 {
		return 0, fmt.Errorf("/proc stat line without a command name: %.40q", line)
	}
	fields := strings.Fields(line[end+1:])
	// fields[0] is field 3 (state); utime is field 14, stime field 15.
	const utime, stime = 14 - 3, 15 - 3
	if len(fields) <= stime {
		return 0, fmt.Errorf("/proc stat line with %d fields after the name", len(fields))
	}
	u, errU := strconv.ParseInt(fields[utime], 10, 64)
	s, errS := strconv.ParseInt(fields[stime], 10, 64)
	if errU != nil || errS != nil {
		return 0, fmt.Errorf("/proc stat utime %q stime %q", fields[utime], fields[stime])
	}
	return time.Duration(u+s) * time.Second / clockTicksPerSecond, nil
}

// SelfCPU is this process's user + system CPU time so far.
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return rusageCPU(&ru)
}

func rusageCPU(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// CPUFigures is the CPU each process used over the measured time. A
// process whose CPU could not be read has its OK false.
type CPUFigures struct {
	Switch, Issuers, Bench time.Duration
	SwitchOK, IssuersOK    bool
}

// cpuWindow measures the CPU the switch, the issuers and this process use
// between the start of the measured time and stop.
type cpuWindow struct {
	switchCPU, issuersCPU func() (time.Duration, error)
	mu                    sync.Mutex
	started               bool
	at0                   CPUFigures
}

// startCPUWindow takes the first samples at at (or at once if at has
// passed), in the background. Either function may be nil.
func startCPUWindow(ctx context.Context, at time.Time, switchCPU, issuersCPU func() (time.Duration, error)) *cpuWindow {
	w := &cpuWindow{switchCPU: switchCPU, issuersCPU: issuersCPU}
	go func() {
		t := time.NewTimer(time.Until(at))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.started = true
		w.at0 = w.sample()
	}()
	return w
}

func (w *cpuWindow) sample() CPUFigures {
	f := CPUFigures{Bench: SelfCPU()}
	f.Switch, f.SwitchOK = sampleCPU(w.switchCPU)
	f.Issuers, f.IssuersOK = sampleCPU(w.issuersCPU)
	return f
}

func sampleCPU(fn func() (time.Duration, error)) (time.Duration, bool) {
	if fn == nil {
		return 0, false
	}
	d, err := fn()
	return d, err == nil
}

// stop returns the CPU used since the window started; nothing when it
// never started (the run ended during the warm-up).
func (w *cpuWindow) stop() CPUFigures {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		return CPUFigures{}
	}
	now := w.sample()
	return CPUFigures{
		Switch: now.Switch - w.at0.Switch, SwitchOK: now.SwitchOK && w.at0.SwitchOK,
		Issuers: now.Issuers - w.at0.Issuers, IssuersOK: now.IssuersOK && w.at0.IssuersOK,
		Bench: now.Bench - w.at0.Bench,
	}
}
