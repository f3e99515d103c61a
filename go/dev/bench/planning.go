package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lollypops/lollypops/go/internal/config"
)

// planResult is one planning measurement: a command on an inventory of
// some size, for lollypops and for the task CLI on the original layout.
type planResult struct {
	hosts     int
	command   string
	lollypops stats
	original  stats
}

// planCommands are the planning commands measured; host1 is in every fleet.
var planCommands = [][]string{{"--list-all"}, {"--dry", "all"}, {"--dry", "host1"}}

// planInventory is a fleet of n hosts with 5 secrets each (the anchors'
// size), as Nix would write it.
func planInventory(n int) *config.Inventory {
	inv := &config.Inventory{Version: config.Version, Hosts: map[string]*config.Host{}}
	root := "root"
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("host%d", i)
		h := &config.Host{
			Name:  name,
			Flake: "/nix/store/0c9m8l1q0ig1gv9a7w7fpkmdj1bd8c7a-source",
			Deployment: config.Deployment{
				ConfigDir: "/var/src/lollypops", DeployMethod: config.MethodCopy, Tags: []string{},
				SSH: config.SSH{Host: name + ".example.org", User: &root, Command: "ssh", Opts: []string{},
					HostKeyPolicy: config.HostKeyStrict},
				Sudo:         config.Sudo{Command: "sudo", Opts: []string{}},
				Rollback:     config.Rollback{Enable: true, ConfirmTimeout: 30},
				HealthChecks: map[string]config.HealthCheck{},
				Reboot:       config.Reboot{Timeout: 300},
			},
			Tasks:      []string{config.TaskDeployFlake, config.TaskDeploySecrets, config.TaskRebuild},
			ExtraTasks: map[string]config.ExtraTask{},
		}
		for s := range 5 {
			h.Secrets.Files = append(h.Secrets.Files, config.Secret{
				Name: fmt.Sprintf("secret%d", s), Cmd: fmt.Sprintf("pass hosts/%s/secret%d", name, s),
				Path: fmt.Sprintf("/run/keys/secret%d", s), Owner: "root", Group: "root", Mode: "0400",
				UploadAt: config.PreActivation, RestartUnits: []string{}, ReloadUnits: []string{},
			})
		}
		inv.Hosts[name] = h
	}
	return inv
}

// runPlanning measures the planning commands for a fleet of n hosts.
func (b *bench) runPlanning(n, reps int, timeout time.Duration, progress func(string)) ([]planResult, error) {
	dir := filepath.Join(b.dir, fmt.Sprintf("plan-%d", n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	inv := planInventory(n)
	invPath := filepath.Join(dir, "inventory.json")
	data, _ := json.Marshal(inv)
	if err := os.WriteFile(invPath, data, 0o644); err != nil {
		return nil, err
	}
	root, err := writeOriginal(filepath.Join(dir, "original"), inv)
	if err != nil {
		return nil, err
	}
	var out []planResult
	for _, c := range planCommands {
		r := planResult{hosts: n, command: fmt.Sprint(c)}
		r.command = c[0]
		if len(c) > 1 {
			r.command += " " + c[1]
		}
		r.lollypops = b.timeReps(reps, timeout, filepath.Join(b.bin, "lollypops"), append([]string{"--inventory", invPath}, c...), dir)
		r.original = b.timeReps(reps, timeout, b.task, append([]string{"-t", root}, c...), dir)
		progress(fmt.Sprintf("%d hosts %s: lollypops %.3fs %d MiB, original %.3fs %d MiB", n, r.command,
			r.lollypops.median.Seconds(), r.lollypops.rss/1024, r.original.median.Seconds(), r.original.rss/1024))
		out = append(out, r)
	}
	return out, nil
}

// timeReps runs a command reps times (once if a run takes longer than
// timeout/reps) and summarizes; a run over the timeout is reported as such.
func (b *bench) timeReps(reps int, timeout time.Duration, name string, args []string, dir string) stats {
	var ss []sample
	for i := range reps {
		ctx, cancel := contextWithTimeout(b.ctx, timeout)
		s, err := timeCommand(ctx, name, args, nil, dir)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return stats{failed: fmt.Sprintf("over %s", timeout)}
			}
			return stats{failed: err.Error()}
		}
		ss = append(ss, s)
		if i == 0 && s.wall*time.Duration(reps) > timeout {
			break
		}
	}
	return summarize(ss)
}
