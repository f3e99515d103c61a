// Command fakehosts brings fake NixOS-like hosts up on 127.0.0.1 for humans,
// the demo and the benchmark (see package fakehost). Needs root.
//
//	fakehosts up --dir D [--user deploy] [--nix-daemon] host1 host2 ...
//	fakehosts down --dir D
//
// up writes D/fleet.json once every host answers, then runs until SIGINT or
// SIGTERM and tears the hosts down. down signals the running up and waits.
// fleet.json names a flake in the local store (written by
// fakehost.WriteFlake) with a fake NixOS system for every host, ready to
// deploy: the hosts' nixos-rebuild builds and activates it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/lollypops/lollypops/go/dev/fakehost"
)

// fleetFile is D/fleet.json.
type fleetFile struct {
	Pid        int         `json:"pid"` // of fakehosts up
	Dir        string      `json:"dir"`
	SSHConfig  string      `json:"ssh_config"`
	KnownHosts string      `json:"known_hosts"`
	Identity   string      `json:"identity"`
	Flake      string      `json:"flake"` // store path of a flake for every host
	Hosts      []fleetHost `json:"hosts"`
}

type fleetHost struct {
	Name    string `json:"name"`
	Port    int    `json:"port"`
	Pid     int    `json:"pid"` // the host's init, PID 1 of its namespace
	Dir     string `json:"dir"`
	HostKey string `json:"host_key"`
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "fakehosts:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: fakehosts up --dir D [--user NAME] [--nix-daemon] HOST... | down --dir D")
	}
	fs := flag.NewFlagSet("fakehosts "+args[0], flag.ContinueOnError)
	dir := fs.String("dir", "", "fleet directory (required)")
	user := fs.String("user", "", "up: also create this user on every host (passwordless sudo, nix trusted)")
	daemon := fs.Bool("nix-daemon", false, "up: run a nix-daemon in every host")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *dir == "" {
		return errors.New("--dir is required")
	}
	switch args[0] {
	case "up":
		return up(*dir, *user, *daemon, fs.Args())
	case "down":
		return down(*dir)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func up(dir, user string, daemon bool, names []string) error {
	if len(names) == 0 {
		return errors.New("up: no hosts")
	}
	specs := make([]fakehost.HostSpec, len(names))
	for i, n := range names {
		specs[i] = fakehost.HostSpec{Name: n, NixDaemon: daemon}
		if user != "" {
			specs[i].Users = []fakehost.UserSpec{{Name: user, Sudo: true, Trusted: true}}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	begin := time.Now()
	f, err := fakehost.New(ctx, dir, specs)
	if err != nil {
		return err
	}
	flake, err := writeFlake(filepath.Join(f.Dir, "flake", "source"), names)
	if err != nil {
		return errors.Join(err, f.Close())
	}
	ff := fleetFile{Pid: os.Getpid(), Dir: f.Dir, SSHConfig: f.SSHConfig, KnownHosts: f.KnownHosts, Identity: f.IdentityFile,
		Flake: flake}
	for _, h := range f.Hosts() {
		ff.Hosts = append(ff.Hosts, fleetHost{Name: h.Name, Port: h.Port, Pid: h.Pid(), Dir: h.Dir, HostKey: h.HostKey()})
	}
	path := filepath.Join(f.Dir, "fleet.json")
	if err := writeJSON(path, ff); err != nil {
		return errors.Join(err, f.Close())
	}
	fmt.Printf("fakehosts: %d hosts up in %s; try: ssh -F %s %s true\n",
		len(names), time.Since(begin).Round(time.Millisecond), f.SSHConfig, names[0])
	<-ctx.Done()
	err = errors.Join(f.Close(), os.RemoveAll(filepath.Join(f.Dir, "flake")))
	if rerr := os.Remove(path); rerr != nil && !os.IsNotExist(rerr) {
		err = errors.Join(err, rerr)
	}
	return err
}

// writeFlake writes a flake with a fake NixOS system per host and adds it
// to the local store.
func writeFlake(dir string, names []string) (string, error) {
	systems := map[string]fakehost.System{}
	for _, n := range names {
		systems[n] = fakehost.System{}
	}
	if err := fakehost.WriteFlake(dir, systems); err != nil {
		return "", err
	}
	return fakehost.StoreAdd(dir)
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// down signals the fakehosts up that wrote D/fleet.json and waits for it.
func down(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "fleet.json"))
	if err != nil {
		return err
	}
	var ff fleetFile
	if err := json.Unmarshal(b, &ff); err != nil {
		return fmt.Errorf("fleet.json: %w", err)
	}
	// Only signal the process if it still is the fakehosts up for dir.
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ff.Pid))
	if err != nil || !strings.Contains(string(cmdline), "\x00up\x00") {
		return fmt.Errorf("fakehosts up (pid %d) is not running", ff.Pid)
	}
	if err := syscall.Kill(ff.Pid, syscall.SIGTERM); err != nil {
		return err
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", ff.Pid))
		if os.IsNotExist(err) || strings.Contains(string(st), ") Z ") {
			return nil
		}
	}
	return fmt.Errorf("fakehosts up (pid %d) did not exit", ff.Pid)
}
