package lock

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lollypops/lollypops/go/internal/rundir"
)

// dialKeeper connects as a step does and returns the holder's stdin.
func dialKeeper(t *testing.T, run *rundir.Dir) *os.File {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: SocketPath(run), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if pid, err := peerPID(c); err != nil || pid != os.Getpid() {
		t.Errorf("peer pid %d, %v; want %d", pid, err, os.Getpid())
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
