// Package peercred tells who is at the other end of a Unix socket: the
// deploy lock and the sudo password's socket only answer the run's own
// processes.
package peercred

import "net"

// Peer is the process at the other end of a Unix socket connection.
type Peer struct {
	PID int // 0 where the system does not tell
	UID int
}

// Of returns the peer of c.
func Of(c *net.UnixConn) (Peer, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var p Peer
	var perr error
	if err := raw.Control(func(fd uintptr) { p, perr = of(int(fd)) }); err != nil {
		return Peer{}, err
	}
	return p, perr
}
