package ssh

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lollypops/lollypops/go/internal/config"
)

func client(opts ...string) *Client {
	user := "root"
	return &Client{Prefix: "/run/lollypops/h", Host: &config.Host{Name: "h", Deployment: config.Deployment{
		SSH: config.SSH{Host: "h.example", User: &user, Command: "ssh", Opts: opts, HostKeyPolicy: config.HostKeyStrict}}}}
}

// persist returns the ControlPersist value ssh takes: the first one.
func persist(args []string) string {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "ControlPersist="); ok && i > 0 && args[i-1] == "-o" {
			return v
		}
	}
	return ""
}

// The shared connection ends by itself when a killed runner cannot close
// it: a finite ControlPersist that the host's ssh.opts may change.
func TestMasterPersistsForAFiniteTime(t *testing.T) {
	if got := persist(client().MasterArgs()); got != ControlPersist || got == "yes" || got == "" {
		t.Errorf("ControlPersist = %q, want %q", got, ControlPersist)
	}
	if got := persist(client("-o", "ControlPersist=5").MasterArgs()); got != "5" {
		t.Errorf("with ssh.opts ControlPersist=5: ssh takes %q", got)
	}
	if got := persist(client().RemoteArgs("true")); got != "" {
		t.Errorf("sessions set ControlPersist=%q; only the master does", got)
	}
	if !slices.Contains(client().MasterArgs(), "ControlMaster=yes") {
		t.Error("the master is not a master")
	}
}

// The wrapper passes everything to ssh but the master control commands,
// which would stop the run's own connection.
func TestWrapperKeepsTheRunsMaster(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	fake := filepath.Join(dir, "fake-ssh")
	os.WriteFile(fake, []byte("#!/bin/sh\nprintf '%s\\n' \"$*\" >> "+log+"\n"), 0o755)
	script, err := client().WrapperScript(fake)
	if err != nil {
		t.Fatal(err)
	}
	wrapper := filepath.Join(dir, "ssh")
	os.WriteFile(wrapper, []byte(script), 0o755)
	for _, c := range []struct {
		args   []string
		passed bool
	}{
		{[]string{"-o", "ControlPath=/tmp/x/ssh-%n", "-O", "exit", "dummyhost"}, false},
		{[]string{"-Ostop", "dummyhost"}, false},
		{[]string{"-p", "22", "-O", "exit", "h"}, false},
		{[]string{"-O", "check", "h"}, true},
		{[]string{"h", "wget", "-O", "exit"}, true},
		{[]string{"-l", "-O", "h", "true"}, true}, // -O is -l's argument here
		{[]string{"-x", "h", "nix-store", "--serve", "--write"}, true},
	} {
		os.Remove(log)
		if out, err := exec.Command(wrapper, c.args...).CombinedOutput(); err != nil {
			t.Fatalf("%q: %v: %s", c.args, err, out)
		}
		got, _ := os.ReadFile(log)
		if passed := len(got) > 0; passed != c.passed {
			t.Errorf("%q: reached ssh = %v, want %v", c.args, passed, c.passed)
		}
		if c.passed && !strings.HasSuffix(strings.TrimSpace(string(got)), strings.Join(c.args, " ")) {
			t.Errorf("%q: ssh got %q", c.args, got)
		}
	}
}
