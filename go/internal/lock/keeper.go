package lock

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lollypops/lollypops/go/internal/rundir"
)

// SocketPath is the run's keeper socket: the stdin of every holder session.
func SocketPath(run *rundir.Dir) string { return filepath.Join(run.Path, "lock.sock") }

// Keeper is the run's side of its hosts' locks, in the lollypops process:
// every holder session's stdin is a connection to it, so the lock lives
// exactly as long as this process keeps the connection open.
type Keeper struct {
	ln    *net.UnixListener
	beat  time.Duration
	mu    sync.Mutex
	conns []heldConn
	done  chan struct{}
	wg    sync.WaitGroup
}

// heldConn is a holder session's connection, and the host whose lock it
// holds (as its step said on connecting; "" if it did not).
type heldConn struct {
	c    *net.UnixConn
	host string
}

// hello is what a step writes on its connection to the keeper before it
// hands it to the holder session: the host, hex-encoded (host names are
// the user's).
func hello(host string) []byte { return []byte(hex.EncodeToString([]byte(host)) + "\n") }

// readHello reads a step's hello; "" if there is none within a second.
func readHello(c *net.UnixConn) string {
	c.SetReadDeadline(time.Now().Add(time.Second))
	defer c.SetReadDeadline(time.Time{})
	var line []byte
	b := make([]byte, 1)
	for len(line) < 1024 {
		if _, err := c.Read(b); err != nil {
			return ""
		}
		if b[0] == '\n' {
			host, err := hex.DecodeString(string(line))
			if err != nil {
				return ""
			}
			return string(host)
		}
		line = append(line, b[0])
	}
	return ""
}

// Start listens on the run's keeper socket and sends every holder a
// heartbeat byte each Heartbeat.
func Start(run *rundir.Dir) (*Keeper, error) { return start(run, Heartbeat) }

func start(run *rundir.Dir, beat time.Duration) (*Keeper, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: SocketPath(run), Net: "unix"})
	if err != nil {
		return nil, err
	}
	k := &Keeper{ln: ln, beat: beat, done: make(chan struct{})}
	k.wg.Add(2)
	go k.accept()
	go k.heartbeat()
	return k, nil
}

func (k *Keeper) accept() {
	defer k.wg.Done()
	for {
		c, err := k.ln.AcceptUnix()
		if err != nil {
			return
		}
		k.mu.Lock()
		select {
		case <-k.done:
			c.Close()
		default:
			k.conns = append(k.conns, heldConn{c: c})
			// Whose it is, without holding up the next connection.
			k.wg.Go(func() {
				host := readHello(c)
				k.mu.Lock()
				defer k.mu.Unlock()
				for i := range k.conns {
					if k.conns[i].c == c {
						k.conns[i].host = host
					}
				}
			})
		}
		k.mu.Unlock()
	}
}

// heartbeat writes "." to every connection; a holder that is gone fails
// the write and its connection is dropped.
func (k *Keeper) heartbeat() {
	defer k.wg.Done()
	t := time.NewTicker(k.beat)
	defer t.Stop()
	for {
		select {
		case <-k.done:
			return
		case <-t.C:
		}
		k.mu.Lock()
		live := k.conns[:0]
		for _, h := range k.conns {
			h.c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := h.c.Write([]byte{'.'}); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				h.c.Close()
				continue
			}
			live = append(live, h)
		}
		k.conns = live
		k.mu.Unlock()
	}
}

// Release ends every holder of the run: their stdin ends, each releases its
// host's lock and ends its session, and Release returns when all are gone
// (or ctx ends). It must run before the run's ssh connections are closed.
func (k *Keeper) Release(ctx context.Context) {
	if k == nil {
		return
	}
	k.mu.Lock()
	close(k.done)
	conns := k.conns
	k.conns = nil
	k.mu.Unlock()
	k.ln.Close()
	k.wg.Wait()
	end(ctx, conns)
}

// ReleaseHost ends the holders of host's lock, as Release does, while the
// run goes on: a host whose steps are over is unlocked at once, not when
// the last host of the run is done.
func (k *Keeper) ReleaseHost(ctx context.Context, host string) {
	if k == nil || host == "" {
		return
	}
	k.mu.Lock()
	var mine []heldConn
	rest := k.conns[:0]
	for _, h := range k.conns {
		if h.host == host {
			mine = append(mine, h)
		} else {
			rest = append(rest, h)
		}
	}
	k.conns = rest
	k.mu.Unlock()
	end(ctx, mine)
}

// end closes the holders' stdin and waits until each has gone (or ctx
// ends).
func end(ctx context.Context, holders []heldConn) {
	conns := make([]*net.UnixConn, len(holders))
	for i, h := range holders {
		conns[i] = h.c
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			defer c.Close()
			c.CloseWrite()
			if dl, ok := ctx.Deadline(); ok {
				c.SetReadDeadline(dl)
			}
			// EOF comes when every copy of the holder's stdin is closed:
			// the ssh client exits once the host's side has exited.
			buf := make([]byte, 64)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		})
	}
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.SetReadDeadline(time.Now())
		}
	})
	defer stop()
	wg.Wait()
}
