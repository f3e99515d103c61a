package fakehost

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// nsID identifies a namespace by the device and inode of its nsfs file.
type nsID struct{ dev, ino uint64 }

func nsOf(path string) (nsID, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nsID{}, err
	}
	return nsID{uint64(st.Dev), st.Ino}, nil
}

// pidNS pins the PID namespace of pid: while the file is open, its inode
// cannot be reused by a new namespace, so scanning /proc for it is exact.
func pidNS(pid int) (*os.File, nsID, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return nil, nsID{}, err
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, nsID{}, err
	}
	id := nsID{uint64(st.Dev), st.Ino}
	self, err := nsOf("/proc/self/ns/pid")
	if err != nil || self == id {
		f.Close()
		return nil, nsID{}, errors.New("process is not in its own PID namespace")
	}
	return f, id, nil
}

// proc is one entry of /proc.
type proc struct {
	pid, ppid int
	sid       int // session ID, as seen from outside the host
	comm      string
	zombie    bool
}

// readProc parses /proc/<pid>/stat; comm may contain spaces and parens.
func readProc(pid int) (proc, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return proc{}, err
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return proc{}, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 4 {
		return proc{}, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return proc{}, err
	}
	sid, err := strconv.Atoi(f[3])
	return proc{pid: pid, ppid: ppid, sid: sid, comm: s[open+1 : end], zombie: f[0] == "Z"}, err
}

// allPids lists the numeric entries of /proc.
func allPids() ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// childOf returns the first child of parent found in /proc, or 0.
func childOf(parent int) int {
	pids, _ := allPids()
	for _, pid := range pids {
		if p, err := readProc(pid); err == nil && p.ppid == parent {
			return pid
		}
	}
	return 0
}

// nsProcs lists the live (not zombie) processes in the PID namespace id.
func nsProcs(id nsID) []proc {
	pids, _ := allPids()
	var out []proc
	for _, pid := range pids {
		if ns, err := nsOf(fmt.Sprintf("/proc/%d/ns/pid", pid)); err != nil || ns != id {
			continue
		}
		if p, err := readProc(pid); err == nil && !p.zombie {
			out = append(out, p)
		}
	}
	return out
}

// listensOn reports whether pid holds the socket listening on
// 127.0.0.1:port, so that a banner on that port is known to be its own
// and not that of some other process that got the port.
func listensOn(pid, port int) bool {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return false
	}
	defer f.Close()
	local := fmt.Sprintf("0100007F:%04X", port)
	inode := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) > 9 && fs[1] == local && fs[3] == "0A" {
			inode = fs[9]
			break
		}
	}
	if inode == "" {
		return false
	}
	want := "socket:[" + inode + "]"
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	for _, fd := range fds {
		if l, err := os.Readlink(fd); err == nil && l == want {
			return true
		}
	}
	return false
}
