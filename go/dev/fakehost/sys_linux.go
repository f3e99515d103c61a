//go:build linux

package fakehost

import "syscall"

// hostProcAttr is how a host's unshare process is started: in its own
// session, and killed when the process that started it dies.
func hostProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
}

// platformProblem says why fake hosts cannot run on this system; on Linux
// nothing does (findTools checks the rest).
const platformProblem = ""
