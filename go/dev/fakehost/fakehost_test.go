package fakehost

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"mvdan.cc/sh/v3/syntax"
)

func TestParseRecord(t *testing.T) {
	rec := "prog 6e69786f732d72656275696c64\nstart 1700000000.123456789\nargc 2\narg 6120620a\narg \n" +
		"valid 1\nend 1700000001.5\nexit 3\n"
	r, err := parseRecord([]byte(rec))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.args, []string{"a b\n", ""}) || r.str("prog") != "nixos-rebuild" || r.exit != 3 {
		t.Fatalf("got %+v", r)
	}
	if r.start != time.Unix(1700000000, 123456789) || r.end != time.Unix(1700000001, 500000000) {
		t.Fatalf("times %v %v", r.start, r.end)
	}
	if _, err := parseRecord([]byte("argc 2\narg 61\n")); err == nil {
		t.Fatal("want argc mismatch error")
	}
}

func TestCheckSpecs(t *testing.T) {
	bad := [][]HostSpec{
		nil,
		{{Name: "Host1"}},
		{{Name: "h;x"}},
		{{Name: "a"}, {Name: "a"}},
		{{Name: "a", Users: []UserSpec{{Name: "root"}}}},
		{{Name: "a", Users: []UserSpec{{Name: "u", Groups: []string{"a b"}}}}},
	}
	for _, s := range bad {
		if err := checkSpecs(s, tools{sudo: "/usr/bin/sudo"}); err == nil {
			t.Errorf("checkSpecs(%+v) = nil, want error", s)
		}
	}
	if err := checkSpecs([]HostSpec{{Name: "a", Users: []UserSpec{{Name: "d", Sudo: true}}}}, tools{}); err == nil ||
		!strings.Contains(err.Error(), "sudo is not installed") {
		t.Errorf("want sudo error, got %v", err)
	}
}

// ssh runs ssh -F <fleet ssh_config> args... and returns combined output.
func ssh(t *testing.T, f *Fleet, args ...string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, "ssh", append([]string{"-F", f.SSHConfig}, args...)...).CombinedOutput()
}

func quoteAll(t *testing.T, words ...string) string {
	t.Helper()
	var out []string
	for _, w := range words {
		q, err := syntax.Quote(w, syntax.LangPOSIX)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, q)
	}
	return strings.Join(out, " ")
}

func TestFleet(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip("fakehost: " + err.Error())
	}
	_, sudoErr := lookTool("sudo")
	spec1 := HostSpec{Name: "host1", Groups: []string{"web"}}
	if sudoErr == nil {
		spec1.Users = []UserSpec{{Name: "deploy", Groups: []string{"keys"}, Sudo: true}}
	}
	ctx := context.Background()
	begin := time.Now()
	f, err := New(ctx, t.TempDir(), []HostSpec{spec1, {Name: "host2"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("2 hosts up in %s", time.Since(begin).Round(time.Millisecond))
	closed := false
	t.Cleanup(func() {
		if !closed {
			f.Close()
		}
	})
	h1, h2 := f.Host("host1"), f.Host("host2")

	t.Run("hostname", func(t *testing.T) {
		for _, h := range f.Hosts() {
			out, err := h.Exec(ctx, "hostname")
			if err != nil || strings.TrimSpace(string(out)) != h.Name {
				t.Errorf("%s: hostname = %q, %v", h.Name, out, err)
			}
		}
	})

	t.Run("auth count", func(t *testing.T) {
		if n, err := h1.AuthCount(); err != nil || n != 0 {
			t.Fatalf("fresh AuthCount = %d, %v", n, err)
		}
		if out, err := ssh(t, f, "host1", "true"); err != nil {
			t.Fatalf("ssh host1 true: %v: %s", err, out)
		}
		if n, err := h1.AuthCount(); err != nil || n != 1 {
			t.Fatalf("AuthCount = %d, %v", n, err)
		}
		out, err := ssh(t, f, "host1", "echo $PATH; command -v nixos-rebuild; hostname")
		want := sessionPath + "\n/run/current-system/sw/bin/nixos-rebuild\nhost1\n"
		if err != nil || string(out) != want {
			t.Fatalf("session env: %q, %v", out, err)
		}
	})

	t.Run("keys isolated", func(t *testing.T) {
		if _, err := h1.Exec(ctx, "sh", "-c", "echo s3cret > /run/keys/x && chmod 0440 /run/keys/x && chgrp keys /run/keys/x"); err != nil {
			t.Fatal(err)
		}
		out, err := h1.Exec(ctx, "stat", "-c", "%a %U %G", "/run/keys", "/run/keys/x")
		if err != nil || string(out) != "750 root keys\n440 root keys\n" {
			t.Fatalf("stat: %q, %v", out, err)
		}
		if out, err := h2.Exec(ctx, "ls", "-A", "/run/keys"); err != nil || len(out) != 0 {
			t.Fatalf("host2 /run/keys: %q, %v", out, err)
		}
		if _, err := os.Stat("/run/keys/x"); !os.IsNotExist(err) {
			t.Fatalf("real /run/keys/x: %v", err)
		}
		if _, err := os.Stat(filepath.Join(h1.Dir, "etc", "group")); err != nil {
			t.Fatalf("groups should live in the overlay: %v", err)
		}
		if out, err := h1.Exec(ctx, "getent", "group", "web"); err != nil || !strings.HasPrefix(string(out), "web:") {
			t.Fatalf("group web: %q, %v", out, err)
		}
	})

	// A store path made on the deployer (in the real /nix), copied to host1 only.
	storePath := addStorePath(t, "hi")

	t.Run("nix copy", func(t *testing.T) {
		begin := time.Now()
		if out, err := nixCopy(f, "ssh://host1", storePath); err != nil {
			t.Fatalf("nix copy: %v: %s", err, out)
		}
		t.Logf("nix copy took %s", time.Since(begin).Round(time.Millisecond))
		if out, err := h1.Exec(ctx, "nix-store", "--check-validity", storePath); err != nil {
			t.Fatalf("host1: %v %s", err, out)
		}
		if _, err := h2.Exec(ctx, "nix-store", "--check-validity", storePath); err == nil {
			t.Fatal("host2 has the path too")
		}
		if _, err := os.Stat(filepath.Join(h1.Dir, "nix", strings.TrimPrefix(storePath, "/nix/"))); err != nil {
			t.Fatalf("not in host1's own /nix: %v", err)
		}
	})

	t.Run("rebuild records", func(t *testing.T) {
		// Options are checked first: odd arguments fail, recorded byte for byte.
		args := []string{"switch", "--flake", storePath + "#host1", "with space", `it's "q" $x *`, ""}
		out, err := ssh(t, f, "host1", "nixos-rebuild "+quoteAll(t, args...))
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "unknown option `with space'") {
			t.Fatalf("exit: %v: %s", err, out)
		}
		// The knobs: a slow build that fails.
		if err := h1.SetRebuildExit(3); err != nil {
			t.Fatal(err)
		}
		if err := h1.SetRebuildSleep(300 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		out, err = ssh(t, f, "host1", "nixos-rebuild", "boot", "--flake", "/nonexistent#host1")
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || !strings.Contains(string(out), "SetRebuildExit") {
			t.Fatalf("second call: %v: %s", err, out)
		}
		if err := h1.SetRebuildSleep(0); err != nil {
			t.Fatal(err)
		}
		if err := h1.SetRebuildExit(0); err != nil {
			t.Fatal(err)
		}
		// Exec passes argv as is: newlines and tabs survive too.
		odd := []string{"test", "line1\nline2\n", "\ttab", "\x01\xff"}
		if out, err := h1.Exec(ctx, append([]string{"nixos-rebuild"}, odd...)...); err == nil {
			t.Fatalf("third call succeeded: %s", out)
		}
		calls, err := h1.RebuildCalls()
		if err != nil || len(calls) != 3 {
			t.Fatalf("calls: %+v, %v", calls, err)
		}
		c := calls[0]
		if !slices.Equal(c.Args, args) || c.User != "root" || c.Hostname != "host1" || c.Exit != 1 || c.Flake != "" {
			t.Errorf("call: %+v", c)
		}
		if c.Start.IsZero() || c.End.Before(c.Start) || time.Since(c.Start) > time.Minute {
			t.Errorf("times: %v %v", c.Start, c.End)
		}
		if c := calls[1]; c.FlakeValid || c.Exit != 3 || !slices.Equal(c.Args, []string{"boot", "--flake", "/nonexistent#host1"}) ||
			c.End.Sub(c.Start) < 300*time.Millisecond {
			t.Errorf("second call: %+v", c)
		}
		if c := calls[2]; !slices.Equal(c.Args, odd) || c.Exit != 1 {
			t.Errorf("third call: %+v", c)
		}
		if calls, err := h2.RebuildCalls(); err != nil || len(calls) != 0 {
			t.Errorf("host2 calls: %+v, %v", calls, err)
		}
	})

	t.Run("sudo user", func(t *testing.T) {
		if sudoErr != nil {
			t.Skip("sudo not installed")
		}
		out, err := ssh(t, f, "deploy@host1", "id -un; sudo -n id -un; sudo -n sh -c 'command -v nixos-rebuild'")
		if err != nil || string(out) != "deploy\nroot\n/run/current-system/sw/bin/nixos-rebuild\n" {
			t.Fatalf("sudo: %q, %v", out, err)
		}
		if _, err := os.Stat("/home/deploy"); !os.IsNotExist(err) {
			t.Fatalf("real /home/deploy: %v", err)
		}
	})

	t.Run("kill sessions", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := h2.SetRebuildSleep(30 * time.Second); err != nil {
			t.Fatal(err)
		}
		defer h2.SetRebuildSleep(0)
		cmd := exec.CommandContext(ctx, "ssh", "-F", f.SSHConfig, "host2", "nixos-rebuild", "switch", "--flake", "/x#host2")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for {
			if calls, _ := h2.RebuildCalls(); len(calls) == 1 {
				break
			}
			if ctx.Err() != nil {
				t.Fatal("nixos-rebuild did not start")
			}
			time.Sleep(10 * time.Millisecond)
		}
		begin := time.Now()
		if err := h2.KillSessions(); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err == nil || time.Since(begin) > 5*time.Second {
			t.Fatalf("ssh survived KillSessions: %v after %s", err, time.Since(begin))
		}
		calls, err := h2.RebuildCalls()
		if err != nil || len(calls) != 1 || calls[0].Exit != -1 || !calls[0].End.IsZero() {
			t.Fatalf("killed call: %+v, %v", calls, err)
		}
		if out, err := ssh(t, f, "host2", "true"); err != nil {
			t.Fatalf("listener gone: %v: %s", err, out)
		}
	})

	t.Run("stop start", func(t *testing.T) {
		port := h2.Port
		if err := h2.Stop(); err != nil {
			t.Fatal(err)
		}
		if out, err := ssh(t, f, "host2", "true"); err == nil {
			t.Fatalf("ssh to stopped host worked: %s", out)
		}
		// Start keeps the port; it fails clearly when someone else has it.
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		err = h2.Start()
		l.Close()
		if err == nil || !strings.Contains(err.Error(), "Address already in use") {
			t.Fatalf("Start on a taken port: %v", err)
		}
		if err := h2.Start(); err != nil {
			t.Fatal(err)
		}
		if out, err := ssh(t, f, "host2", "hostname"); err != nil || string(out) != "host2\n" || h2.Port != port {
			t.Fatalf("after Start: %q, %v, port %d->%d", out, err, port, h2.Port)
		}
	})

	t.Run("rotate host key", func(t *testing.T) {
		old := h2.HostKey()
		if err := f.RotateHostKey("host2"); err != nil {
			t.Fatal(err)
		}
		if h2.HostKey() == old {
			t.Fatal("key unchanged")
		}
		out, err := ssh(t, f, "host2", "true")
		if err == nil || !strings.Contains(string(out), "HOST IDENTIFICATION HAS CHANGED") {
			t.Fatalf("want host key mismatch, got %v: %s", err, out)
		}
	})

	t.Run("close", func(t *testing.T) {
		var pids []int
		for _, h := range f.Hosts() {
			pids = append(pids, h.Pid())
		}
		closed = true
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		for _, pid := range pids {
			if p, err := readProc(pid); err == nil {
				t.Errorf("pid %d still there: %+v", pid, p)
			}
		}
		if out, err := exec.Command("pgrep", "-af", f.Dir).Output(); err == nil {
			t.Errorf("processes left: %s", out)
		}
		mi, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil || bytes.Contains(mi, []byte(f.Dir)) {
			t.Errorf("mounts left (%v):\n%s", err, mi)
		}
		if _, err := os.Stat(h1.Dir); !os.IsNotExist(err) {
			t.Errorf("host dir left: %v", err)
		}
	})
}

func TestSystemArgs(t *testing.T) {
	got, err := System{Kernel: "6.6.31", Initrd: `i "2" ${x}`, FailActivation: true, StopSSHD: true, Packages: []string{"hello-2.12"}}.args("h1")
	want := `{ hostName = "h1"; system = "` + nixSystem() + `"; kernel = "6.6.31"; initrd = "i \"2\" \${x}"; failActivation = true; stopSshd = true; packages = [ "hello-2.12" ]; }`
	if err != nil || got != want {
		t.Errorf("args:\n got %s (%v)\nwant %s", got, err, want)
	}
	if _, err := (System{Packages: []string{"a b"}}).args("h1"); err == nil {
		t.Error("a package name with a blank was accepted")
	}
	if _, err := (System{Kernel: "6.6 rc1"}).args("h1"); err == nil {
		t.Error("a kernel version with a blank was accepted")
	}
	if err := WriteFlake(t.TempDir(), map[string]System{"Bad_Name": {}}); err == nil {
		t.Error("an invalid host name was accepted")
	}
}
