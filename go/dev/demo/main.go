// Command demo shows lollypops deploying to three throwaway local hosts:
// it brings up fake hosts (see package fakehost), makes a password store
// with a throwaway GPG key, puts a small flake (a tiny fake NixOS system per
// host, fakehost.WriteFlake) in the local Nix store,
// writes the inventory the lollypops Nix app would write for three hosts,
// runs lollypops (listing, then "all"), shows what landed on each host, and
// tears everything down. `make demo` builds the binaries and runs it as root.
//
//	demo --bin DIR     DIR holds lollypops and lollypops-step
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
)

func main() {
	bin := flag.String("bin", "", "directory with lollypops and lollypops-step")
	flag.Parse()
	if err := run(*bin); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func step(format string, args ...any) {
	fmt.Printf("\n\033[1m==> "+format+"\033[0m\n", args...)
}

func run(bin string) error {
	if bin == "" {
		return fmt.Errorf("--bin is required")
	}
	if err := fakehost.Available(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "lollypops-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step("bringing up three throwaway hosts (sshd in their own namespaces, each with its own /nix store)")
	// Bounds the setup and the looks at the hosts afterwards.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	names := []string{"ahorn", "birne", "kirsche"}
	var specs []fakehost.HostSpec
	for _, n := range names {
		specs = append(specs, fakehost.HostSpec{Name: n, Groups: []string{"nginx"}})
	}
	fleet, err := fakehost.New(ctx, filepath.Join(dir, "fleet"), specs)
	if err != nil {
		return err
	}
	defer fleet.Close()
	for _, h := range fleet.Hosts() {
		fmt.Printf("  %s on 127.0.0.1:%d\n", h.Name, h.Port)
	}

	step("a password store with a throwaway GPG key, for the default secret command (pass)")
	env := []string{"GNUPGHOME=" + filepath.Join(dir, "gnupg"), "PASSWORD_STORE_DIR=" + filepath.Join(dir, "pass")}
	os.Mkdir(filepath.Join(dir, "gnupg"), 0o700)
	defer sh(env, "", "gpgconf", "--kill", "gpg-agent")
	if err := sh(env, "", "gpg", "--batch", "--quiet", "--passphrase", "", "--quick-gen-key", "demo@lollypops.invalid", "default", "default", "never"); err != nil {
		return err
	}
	if err := sh(env, "", "pass", "init", "demo@lollypops.invalid"); err != nil {
		return err
	}
	for _, n := range names {
		if err := sh(env, "database password of "+n+"\n", "pass", "insert", "--multiline", "nixos-secrets/"+n+"/db"); err != nil {
			return err
		}
	}

	step("a flake in the local Nix store: a tiny fake NixOS system for each host, no nixpkgs")
	src := filepath.Join(dir, "flake", "source")
	systems := map[string]fakehost.System{}
	for _, n := range names {
		systems[n] = fakehost.System{Kernel: "6.6.31", Packages: []string{"hello-2.12"}}
	}
	if err := fakehost.WriteFlake(src, systems); err != nil {
		return err
	}
	flake, err := fakehost.StoreAdd(src)
	if err != nil {
		return err
	}
	fmt.Println(" ", flake)

	inv := inventory(fleet, flake, names)
	data, _ := json.MarshalIndent(inv, "", "  ")
	invPath := filepath.Join(dir, "inventory.json")
	os.WriteFile(invPath, data, 0o600)

	lollypops := filepath.Join(bin, "lollypops")
	step("lollypops --list-all")
	if err := sh(env, "", lollypops, "--inventory", invPath, "--list-all"); err != nil {
		return err
	}
	step("lollypops all   (every host in parallel: flake, secrets, rebuild)")
	if err := sh(env, "", lollypops, "--inventory", invPath, "all"); err != nil {
		return err
	}

	step("what landed on the hosts")
	for _, h := range fleet.Hosts() {
		out, err := h.Exec(ctx, "sh", "-c", `echo "$(hostname):"; stat -c '  %a %U:%G %n' /run/keys/* /var/src/lollypops/flake`)
		if err != nil {
			return err
		}
		fmt.Print(string(out))
		// Compare the secret with its source without printing it.
		got, err := h.Exec(ctx, "cat", "/run/keys/db")
		if err != nil {
			return err
		}
		same := "differs from"
		if string(got) == "database password of "+h.Name+"\n" {
			same = "is byte for byte"
		}
		fmt.Printf("  /run/keys/db (%d bytes) %s pass show nixos-secrets/%s/db\n", len(got), same, h.Name)
		calls, _ := h.RebuildCalls()
		for _, c := range calls {
			fmt.Printf("  nixos-rebuild %s (as %s; the flake resolved to %s; exit %d)\n", strings.Join(c.Args, " "), c.User, c.FlakeTarget, c.Exit)
		}
		gens, _ := h.Generations()
		for _, g := range gens {
			mark := ""
			if g.Current {
				mark = " (current)"
			}
			fmt.Printf("  system generation %d: %s%s\n", g.Number, g.Path, mark)
		}
		if cur, err := h.CurrentSystem(ctx); err == nil {
			fmt.Printf("  /run/current-system -> %s\n", cur)
		}
		n, _ := h.AuthCount()
		fmt.Printf("  ssh authentications during the run: %d\n", n)
	}
	step("tearing the hosts down")
	return nil
}

// inventory is what nix/apps.nix writes for three hosts that set a few
// options, as in the seed README's examples.
func inventory(f *fakehost.Fleet, flake string, names []string) *config.Inventory {
	inv := &config.Inventory{Version: config.Version, Hosts: map[string]*config.Host{}}
	for _, n := range names {
		root := "root"
		inv.Hosts[n] = &config.Host{
			Flake: flake,
			Deployment: config.Deployment{
				ConfigDir: "/var/src/lollypops", DeployMethod: config.MethodCopy, Tags: []string{},
				SSH: config.SSH{Host: n, User: &root, Command: "ssh", Opts: []string{"-F", f.SSHConfig},
					HostKeyPolicy: config.HostKeyStrict},
				Sudo:         config.Sudo{Command: "sudo", Opts: []string{}},
				Rollback:     config.Rollback{Enable: true, ConfirmTimeout: 30},
				HealthChecks: map[string]config.HealthCheck{},
				Reboot:       config.Reboot{Timeout: 300},
			},
			Secrets: config.Secrets{Files: []config.Secret{
				{Name: "nixos-secrets/" + n + "/db", Cmd: "pass nixos-secrets/" + n + "/db", Path: "/run/keys/db",
					Owner: "root", Group: "nginx", Mode: "0440", UploadAt: config.PreActivation,
					RestartUnits: []string{}, ReloadUnits: []string{}},
				{Name: "api-token", Cmd: "printf 'token-for-%s' " + n, Path: "/run/keys/api-token",
					Owner: "root", Group: "root", Mode: "0400", UploadAt: config.PreActivation,
					RestartUnits: []string{}, ReloadUnits: []string{}},
			}},
			Tasks:      []string{config.TaskDeployFlake, config.TaskDeploySecrets, config.TaskRebuild},
			ExtraTasks: map[string]config.ExtraTask{},
		}
	}
	return inv
}

// sh runs a command with the demo's environment, printing its output.
func sh(env []string, stdin string, args ...string) error {
	c := exec.Command(args[0], args[1:]...)
	c.Env = append(os.Environ(), env...)
	c.Stdin = strings.NewReader(stdin)
	c.Stdout, c.Stderr = os.Stdout, os.Stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s: %w", args[0], err)
	}
	return nil
}
