package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// sample is one timed command.
type sample struct {
	wall   time.Duration
	maxRSS int64 // KiB
}

// stats are the median, minimum and maximum of samples.
type stats struct {
	median, min, max time.Duration
	rss              int64 // largest max RSS, KiB
	n                int
	failed           string // why the command failed, if it did
}

func summarize(ss []sample) stats {
	if len(ss) == 0 {
		return stats{}
	}
	walls := make([]time.Duration, len(ss))
	var rss int64
	for i, s := range ss {
		walls[i] = s.wall
		rss = max(rss, s.maxRSS)
	}
	slices.Sort(walls)
	med := walls[len(walls)/2]
	if len(walls)%2 == 0 {
		med = (walls[len(walls)/2-1] + walls[len(walls)/2]) / 2
	}
	return stats{median: med, min: walls[0], max: walls[len(walls)-1], rss: rss, n: len(ss)}
}

// timeCommand runs cmd and measures its wall time and peak memory.
func timeCommand(ctx context.Context, name string, args []string, env []string, dir string) (sample, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Dir = dir
	var out strings.Builder
	cmd.Stdout = io.Discard
	cmd.Stderr = &out
	start := time.Now()
	err := cmd.Run()
	s := sample{wall: time.Since(start)}
	if cmd.ProcessState == nil {
		return s, fmt.Errorf("%s: %v", filepath.Base(name), err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		s.maxRSS = ru.Maxrss
	}
	if err != nil {
		tail := out.String()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return s, fmt.Errorf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, tail)
	}
	return s, nil
}

// Byte counting: the ssh config of a counting run sends every connection
// through `bench proxy PORT LOG`, which relays it to the host and appends
// "<bytes sent> <bytes received>" to LOG when it closes.

func runProxy(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: bench proxy PORT LOG")
	}
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", args[0]))
	if err != nil {
		return err
	}
	var sent, recv atomic.Int64
	var once sync.Once
	logOnce := func() {
		once.Do(func() {
			f, err := os.OpenFile(args[1], os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
			if err == nil {
				fmt.Fprintf(f, "%d %d\n", sent.Load(), recv.Load())
				f.Close()
			}
		})
	}
	// ssh ends its ProxyCommand with SIGHUP when the connection closes.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sigs
		logOnce()
		os.Exit(0)
	}()
	done := make(chan struct{})
	go func() {
		counted(os.Stdout, conn, &recv)
		os.Stdout.Close()
		close(done)
	}()
	counted(conn, os.Stdin, &sent)
	conn.(*net.TCPConn).CloseWrite()
	<-done
	logOnce()
	return nil
}

// counted copies src to dst, adding the bytes to n as they go.
func counted(dst io.Writer, src io.Reader, n *atomic.Int64) {
	buf := make([]byte, 32<<10)
	for {
		k, err := src.Read(buf)
		if k > 0 {
			n.Add(int64(k))
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// countingConfig writes an ssh_config that routes each host's connections
// through the proxy, logging to logDir/<host>.
func countingConfig(sshConfig, logDir, self string) (string, error) {
	data, err := os.ReadFile(sshConfig)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	var host string
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "Host" {
			host = f[1]
		}
		b.WriteString(line + "\n")
		if len(f) == 2 && f[0] == "Port" {
			fmt.Fprintf(&b, "  ProxyCommand %s proxy %s %s\n", self, f[1], filepath.Join(logDir, host))
		}
	}
	p := filepath.Join(logDir, "ssh_config")
	return p, os.WriteFile(p, []byte(b.String()), 0o644)
}

// connections reads a proxy log: connections and bytes sent by the client.
func connections(log string) (n int, sent int64) {
	data, _ := os.ReadFile(log)
	for _, l := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 {
			n++
			s, _ := strconv.ParseInt(f[0], 10, 64)
			sent += s
		}
	}
	return n, sent
}

// countExecs runs cmd under strace and counts the programs it started.
func countExecs(ctx context.Context, name string, args, env []string, dir, tmp string) (int, error) {
	out := filepath.Join(tmp, "strace.out")
	os.Remove(out)
	sargs := append([]string{"-f", "--seccomp-bpf", "-qq", "-e", "trace=execve", "-e", "signal=none", "-o", out, name}, args...)
	if _, err := timeCommand(ctx, "strace", sargs, env, dir); err != nil {
		return 0, err
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, l := range strings.Split(string(data), "\n") {
		// A concurrent execve shows as "execve(... <unfinished ...>" then
		// "<... execve resumed>...) = 0": count the line with the result.
		if strings.Contains(l, "execve") && strings.HasSuffix(strings.TrimSpace(l), "= 0") {
			n++
		}
	}
	return n, nil
}
