package settleday

import (
	"os"
	"syscall"
	"time"
)

// CrashEnv names the environment variable that makes a settle process kill
// itself (SIGKILL) at a named point of a run: "reading", "written",
// "synced", "manifest", "linked", "swapped", "pruning", "done". Only
// cmd/settle's crash test sets it, in the environment of the child it
// kills; an operator has no use for it.
const CrashEnv = "TAPSWITCH_TEST_SETTLE_CRASH_AT"

var crashAt = os.Getenv(CrashEnv)

// crashPoint kills the process when it is the point CrashEnv names.
func crashPoint(name string) {
	if crashAt != name {
		return
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	time.Sleep(time.Minute) // SIGKILL cannot be caught; this is never reached
}
