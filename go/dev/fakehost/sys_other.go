//go:build !linux

package fakehost

import "syscall"

// hostProcAttr only needs to compile here: fake hosts are Linux namespaces,
// and findTools refuses to start them elsewhere (platformProblem).
func hostProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setsid: true}
}

// platformProblem makes Available fail, so that tests skip with one line.
const platformProblem = "fake hosts need Linux (namespaces, mounts, parent-death signals)"
