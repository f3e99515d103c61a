package lock

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/internal/rundir"
)

// dialKeeper connects as a step does and returns the holder's stdin.
func dialKeeper(t *testing.T, run *rundir.Dir) *os.File { return dialKeeperFor(t, run, "") }

// dialKeeperFor does so for host's lock: it says so first, unless host
// is "".
func dialKeeperFor(t *testing.T, run *rundir.Dir, host string) *os.File {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: SocketPath(run), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if pid, err := peerPID(c); err != nil || pid != os.Getpid() {
		t.Errorf("peer pid %d, %v; want %d", pid, err, os.Getpid())
	}
	if host != "" {
		if _, err := c.Write(hello(host)); err != nil {
			t.Fatal(err)
		}
	}
	f, err := c.File()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// Release returns once every holder has gone, and holders hear the
// heartbeat until then.
func TestKeeper(t *testing.T) {
	run := &rundir.Dir{Path: t.TempDir()}
	k, err := start(run, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(run.Path, "out")
	var cmds []*exec.Cmd
	for i := 0; i < 2; i++ {
		stdin := dialKeeper(t, run)
		// A holder: reads heartbeats until its stdin ends, takes its time
		// to leave, and says what it heard.
		cmd := exec.Command("sh", "-c", `n=$(head -c 3); echo >>"$1.heard"; while read -r _; do :; done; sleep 0.2; echo "$n" >>"$1"`, "holder", out)
		cmd.Stdin = stdin
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stdin.Close()
		cmds = append(cmds, cmd)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if b, _ := os.ReadFile(out + ".heard"); len(b) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the holders heard no heartbeat in a minute")
		}
	}
	k.Release(context.Background())
	got, _ := os.ReadFile(out)
	if string(got) != "...\n...\n" {
		t.Errorf("when Release returned, the holders had written %q", got)
	}
	for _, c := range cmds {
		c.Wait()
	}
}

// ReleaseHost ends the holders of one host, whatever its name, and no
// other; Release ends the rest.
func TestKeeperReleaseHost(t *testing.T) {
	run := &rundir.Dir{Path: t.TempDir()}
	k, err := start(run, 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	hosts := []string{"web\n1 $(x)", "db", "web\n1 $(x)", "db2"}
	var cmds []*exec.Cmd
	for i, h := range hosts {
		stdin := dialKeeperFor(t, run, h)
		out := filepath.Join(run.Path, fmt.Sprint(i))
		cmd := exec.Command("sh", "-c", `while read -r _; do :; done; echo gone >"$1"`, "holder", out)
		cmd.Stdin = stdin
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		stdin.Close()
		cmds = append(cmds, cmd)
	}
	gone := func() (g []bool) {
		for i := range hosts {
			_, err := os.Stat(filepath.Join(run.Path, fmt.Sprint(i)))
			g = append(g, err == nil)
		}
		return g
	}
	// The hellos arrive in their own time: until then a holder has no
	// host, and ReleaseHost ends none.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		k.mu.Lock()
		n := 0
		for _, c := range k.conns {
			if c.host != "" {
				n++
			}
		}
		k.mu.Unlock()
		if n == len(hosts) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the keeper did not learn the holders' hosts in a minute")
		}
	}
	k.ReleaseHost(context.Background(), "web\n1 $(x)")
	if g := gone(); !g[0] || g[1] || !g[2] || g[3] {
		t.Errorf("after ReleaseHost of web: gone %v", g)
	}
	k.ReleaseHost(context.Background(), "nobody")
	k.Release(context.Background())
	if g := gone(); !g[1] || !g[3] {
		t.Errorf("after Release: gone %v", g)
	}
	for _, c := range cmds {
		c.Wait()
	}
}

// A holder that does not leave does not keep Release past its context.
func TestKeeperReleaseBounded(t *testing.T) {
	run := &rundir.Dir{Path: t.TempDir()}
	k, err := Start(run)
	if err != nil {
		t.Fatal(err)
	}
	stdin := dialKeeper(t, run)
	defer stdin.Close() // a holder that never closes its stdin
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan struct{})
	go func() { k.Release(ctx); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Release ignored its context")
	}
}
