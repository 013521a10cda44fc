package load

import "syscall"

// childProcAttr makes the kernel send the child SIGTERM if bench dies
// without stopping it, so no switchd outlives its harness.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
