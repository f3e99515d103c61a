package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lollypops/lollypops/go/dev/fakehost"
	"github.com/lollypops/lollypops/go/internal/config"
	runreport "github.com/lollypops/lollypops/go/internal/report"
)

// Variants of a deploy.
const (
	vLollypops = "lollypops"
	vLower     = "lower bound"
	vOriginal  = "original shape"
	// With the guarded activation (rollback on, the default), against the
	// same steps by hand.
	vGuarded      = "lollypops, guarded"
	vLowerGuarded = "lower bound, guarded"
)

// guardedConfirmTimeout is the guarded variant's confirm-timeout.
const guardedConfirmTimeout = 120

var variants = []string{vLollypops, vLower, vOriginal, vGuarded, vLowerGuarded}

// countedVariants: the variants whose programs, connections and bytes are counted.
var countedVariants = []string{vLollypops, vLower, vOriginal}

// scenario is one deploy size.
type scenario struct{ hosts, secrets int }

// deployResult is what one scenario measured.
type deployResult struct {
	scenario
	times  map[string]stats
	auths  map[string]float64 // ssh authentications per host and run
	execs  map[string]float64 // programs started on the deployer, per host
	conns  map[string]float64 // TCP connections per host
	bytes  map[string]float64 // bytes sent per host
	counts bool
	// stages is where lollypops' time went in one more run (--timings):
	// per stage, the median over the hosts of its total duration per host.
	stages []stageTime
	// span is that run's wall time.
	span time.Duration
	// The same for the guarded activation.
	guardedStages []stageTime
	guardedSpan   time.Duration
}

// stageTime is a stage's median duration per host in the breakdown run.
type stageTime struct {
	name   string
	median time.Duration
	max    time.Duration
}

// bench holds what every deploy scenario shares.
type bench struct {
	ctx       context.Context
	dir       string // scratch
	bin       string // lollypops and lollypops-step
	task      string // the task CLI of the same go-task
	self      string // this benchmark's binary (proxy mode)
	fleet     *fakehost.Fleet
	flakes    int
	haveTrace bool
}

// newFlake adds a flake with unique content to the store, so that every
// run really copies one. It defines the same fake NixOS system for every
// host (fakehost.WriteFlake), which the hosts build once and then find
// built.
func (b *bench) newFlake() (string, error) {
	b.flakes++
	dir := filepath.Join(b.dir, "flakes", fmt.Sprint(b.flakes), "source")
	systems := map[string]fakehost.System{}
	for _, h := range b.fleet.Hosts() {
		systems[h.Name] = fakehost.System{}
	}
	if err := fakehost.WriteFlake(dir, systems); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "run"), fmt.Appendf(nil, "%d\n", b.flakes), 0o644); err != nil {
		return "", err
	}
	return fakehost.StoreAdd(dir)
}

// secretFiles writes n small secret values and returns their commands.
func (b *bench) secretFiles(n int) ([]string, error) {
	dir := filepath.Join(b.dir, "secrets")
	os.MkdirAll(dir, 0o700)
	var cmds []string
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("s%03d", i))
		value := fmt.Sprintf("secret-%03d-%s", i, strings.Repeat("x", 48))
		if err := os.WriteFile(p, []byte(value), 0o600); err != nil {
			return nil, err
		}
		cmds = append(cmds, "cat "+p)
	}
	return cmds, nil
}

func (b *bench) hostNames(n int) []string {
	var names []string
	for _, h := range b.fleet.Hosts()[:n] {
		names = append(names, h.Name)
	}
	return names
}

// inventory is the deploy every variant does.
func (b *bench) inventory(hosts []string, cmds []string, flake, sshConfig string) *config.Inventory {
	inv := &config.Inventory{Version: config.Version, Hosts: map[string]*config.Host{}}
	for _, n := range hosts {
		root := "root"
		h := &config.Host{
			Name:  n,
			Flake: flake,
			Deployment: config.Deployment{
				ConfigDir: "/var/src/lollypops", DeployMethod: config.MethodCopy, Tags: []string{},
				SSH: config.SSH{Host: n, User: &root, Command: "ssh", Opts: []string{"-F", sshConfig},
					HostKeyPolicy: config.HostKeyStrict},
				Sudo: config.Sudo{Command: "sudo", Opts: []string{}},
				// Off, as for the lower bound: both activate through the
				// host's nixos-rebuild switch.
				Rollback:     config.Rollback{Enable: false, ConfirmTimeout: 30},
				HealthChecks: map[string]config.HealthCheck{},
				Reboot:       config.Reboot{Timeout: 300},
			},
			Secrets:    config.Secrets{Files: []config.Secret{}},
			Tasks:      []string{config.TaskDeployFlake, config.TaskDeploySecrets, config.TaskRebuild},
			ExtraTasks: map[string]config.ExtraTask{},
		}
		for i, c := range cmds {
			h.Secrets.Files = append(h.Secrets.Files, config.Secret{
				Name: fmt.Sprintf("s%03d", i), Cmd: c, Path: fmt.Sprintf("/run/keys/bench/s%03d", i),
				Owner: "root", Group: "root", Mode: "0400", UploadAt: config.PreActivation,
				RestartUnits: []string{}, ReloadUnits: []string{},
			})
		}
		inv.Hosts[n] = h
	}
	return inv
}

// command returns how to run variant for the inventory.
func (b *bench) command(variant string, inv *config.Inventory, hosts []string, sshConfig, work string) (string, []string, []string, error) {
	switch variant {
	case vLollypops, vGuarded:
		if variant == vGuarded {
			for _, h := range inv.Hosts {
				h.Deployment.Rollback.Enable = true
				// The 20 fake hosts and the deployer share this machine's
				// cores: at 20 × 50, reconnecting took up to 16 s, and
				// with the default 30 s a few healthy hosts rolled back.
				h.Deployment.Rollback.ConfirmTimeout = guardedConfirmTimeout
			}
		}
		p := filepath.Join(work, "inventory.json")
		data, _ := json.Marshal(inv)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return "", nil, nil, err
		}
		return filepath.Join(b.bin, "lollypops"), []string{"--inventory", p, "all"}, nil, nil
	case vLower, vLowerGuarded:
		script := filepath.Join(work, "lower.sh")
		list := filepath.Join(work, "secrets.tsv")
		var lines strings.Builder
		for _, s := range inv.Hosts[hosts[0]].Secrets.Files {
			fmt.Fprintf(&lines, "%s\t%s\t%s\t%s\t%s\n", s.Path, s.Mode, s.Owner, s.Group, s.Cmd)
		}
		if err := os.WriteFile(list, []byte(lines.String()), 0o600); err != nil {
			return "", nil, nil, err
		}
		if err := os.WriteFile(script, []byte(lowerBound), 0o755); err != nil {
			return "", nil, nil, err
		}
		flake := inv.Hosts[hosts[0]].Flake
		mode := "plain"
		if variant == vLowerGuarded {
			mode = "guarded"
		}
		return "bash", append([]string{script, sshConfig, flake, list, mode}, hosts...), nil, nil
	case vOriginal:
		root, err := writeOriginal(filepath.Join(work, "original"), inv)
		if err != nil {
			return "", nil, nil, err
		}
		// The original leaves nix's features to the user's nix.conf.
		return b.task, []string{"-t", root, "all"}, []string{"NIX_CONFIG=experimental-features = nix-command flakes"}, nil
	}
	return "", nil, nil, fmt.Errorf("unknown variant %q", variant)
}

// runDeploy measures one scenario.
func (b *bench) runDeploy(sc scenario, reps map[string]int, counts bool, progress func(string)) (*deployResult, error) {
	hosts := b.hostNames(sc.hosts)
	cmds, err := b.secretFiles(sc.secrets)
	if err != nil {
		return nil, err
	}
	res := &deployResult{scenario: sc, times: map[string]stats{}, auths: map[string]float64{},
		execs: map[string]float64{}, conns: map[string]float64{}, bytes: map[string]float64{}, counts: counts}
	samples := map[string][]sample{}
	authTotal := map[string]int{}
	runs := map[string]int{}
	maxReps := 0
	for _, r := range reps {
		maxReps = max(maxReps, r)
	}
	for rep := range maxReps {
		for i := range variants {
			// Rotate the order so that no variant always runs first.
			v := variants[(i+rep)%len(variants)]
			if rep >= reps[v] {
				continue
			}
			// The last run of lollypops (and guarded) writes a report:
			// where its time went.
			report := ""
			if (v == vLollypops || v == vGuarded) && rep == reps[v]-1 {
				report = filepath.Join(b.dir, "report.json")
			}
			s, auths, err := b.deployOnce(v, hosts, cmds, b.fleet.SSHConfig, report)
			if err != nil {
				res.times[v] = stats{failed: err.Error()}
				return res, err
			}
			if report != "" {
				stages, err := stagesOf(report)
				if err != nil {
					return res, err
				}
				if v == vGuarded {
					res.guardedStages, res.guardedSpan = stages, s.wall
				} else {
					res.stages, res.span = stages, s.wall
				}
			}
			samples[v] = append(samples[v], s)
			authTotal[v] += auths
			runs[v]++
			progress(fmt.Sprintf("%d×%d %s run %d: %.2fs", sc.hosts, sc.secrets, v, rep+1, s.wall.Seconds()))
		}
	}
	for _, v := range variants {
		res.times[v] = summarize(samples[v])
		if runs[v] > 0 {
			res.auths[v] = float64(authTotal[v]) / float64(runs[v]*sc.hosts)
		}
	}
	if !counts {
		return res, nil
	}
	for _, v := range countedVariants {
		if reps[v] == 0 {
			continue
		}
		execs, conns, sent, err := b.countOnce(v, hosts, cmds)
		if err != nil {
			return res, err
		}
		res.execs[v] = float64(execs) / float64(sc.hosts)
		res.conns[v] = float64(conns) / float64(sc.hosts)
		res.bytes[v] = float64(sent) / float64(sc.hosts)
	}
	return res, nil
}

// deployOnce deploys with a fresh flake and returns the time and the ssh
// authentications the hosts logged; lollypops writes its run report to
// report, unless empty.
func (b *bench) deployOnce(v string, hosts, cmds []string, sshConfig string, report string) (sample, int, error) {
	flake, err := b.newFlake()
	if err != nil {
		return sample{}, 0, err
	}
	work, err := os.MkdirTemp(b.dir, "run-")
	if err != nil {
		return sample{}, 0, err
	}
	defer os.RemoveAll(work)
	inv := b.inventory(hosts, cmds, flake, sshConfig)
	name, args, env, err := b.command(v, inv, hosts, sshConfig, work)
	if err != nil {
		return sample{}, 0, err
	}
	if report != "" {
		args = append([]string{"--report", report}, args...)
	}
	before := 0
	for _, h := range hosts {
		n, _ := b.fleet.Host(h).AuthCount()
		before += n
	}
	s, err := timeCommand(b.ctx, name, args, env, work)
	if err != nil {
		return s, 0, fmt.Errorf("%s: %w", v, err)
	}
	after := 0
	for _, h := range hosts {
		n, _ := b.fleet.Host(h).AuthCount()
		after += n
	}
	return s, after - before, nil
}

// countOnce deploys once through the byte-counting proxy, under strace.
func (b *bench) countOnce(v string, hosts, cmds []string) (execs, conns int, sent int64, err error) {
	logs, err := os.MkdirTemp(b.dir, "count-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(logs)
	cfg, err := countingConfig(b.fleet.SSHConfig, logs, b.self)
	if err != nil {
		return 0, 0, 0, err
	}
	flake, err := b.newFlake()
	if err != nil {
		return 0, 0, 0, err
	}
	work := filepath.Join(logs, "work")
	os.Mkdir(work, 0o755)
	inv := b.inventory(hosts, cmds, flake, cfg)
	name, args, env, err := b.command(v, inv, hosts, cfg, work)
	if err != nil {
		return 0, 0, 0, err
	}
	if b.haveTrace {
		if execs, err = countExecs(b.ctx, name, args, env, work, logs); err != nil {
			return 0, 0, 0, fmt.Errorf("%s (counting): %w", v, err)
		}
		// The proxy's own processes are not the deploy's.
	} else if _, err := timeCommand(b.ctx, name, args, env, work); err != nil {
		return 0, 0, 0, fmt.Errorf("%s (counting): %w", v, err)
	}
	// The proxies of connections that outlive the command (ssh masters
	// closing) log when ssh hangs them up: give them a moment.
	time.Sleep(time.Second)
	for _, h := range hosts {
		n, s := connections(filepath.Join(logs, h))
		conns += n
		sent += s
	}
	if b.haveTrace {
		execs -= 2 * conns // ssh starts each proxy through sh -c "exec ..."
	} else {
		execs = -1
	}
	return execs, conns, sent, nil
}

// stagesOf reads each step's stages (--timings) from a run's report:
// per stage, the median and the maximum over the hosts of the time it took
// on a host (a stage that occurs in several steps, such as connect and
// lock, summed).
func stagesOf(path string) ([]stageTime, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var run runreport.Run
	if err := json.Unmarshal(data, &run); err != nil {
		return nil, err
	}
	perHost := map[string][]time.Duration{}
	var order []string
	// The run's own time around its hosts' steps: from its start to the
	// first step, and from the last step's end to its end (the locks
	// released, the connections closed, the summary).
	var first, last time.Time
	for _, h := range run.Hosts {
		for _, st := range h.Steps {
			if st.Start == nil || st.DurationMS == nil {
				continue
			}
			end := st.Start.Add(time.Duration(*st.DurationMS) * time.Millisecond)
			if first.IsZero() || st.Start.Before(first) {
				first = *st.Start
			}
			if end.After(last) {
				last = end
			}
		}
	}
	for _, h := range run.Hosts {
		sums := map[string]time.Duration{}
		for _, st := range h.Steps {
			name := "step " + st.Name
			if st.DurationMS != nil {
				sums[name] += time.Duration(*st.DurationMS) * time.Millisecond
			}
			if !slices.Contains(order, name) {
				order = append(order, name)
			}
			for _, g := range st.Stages {
				n := g.Name
				if strings.HasPrefix(n, "secret ") && n != "secret session" {
					n = "secret commands (all)"
				}
				sums[n] += time.Duration(g.DurationMS) * time.Millisecond
				if !slices.Contains(order, n) {
					order = append(order, n)
				}
			}
		}
		for n, d := range sums {
			perHost[n] = append(perHost[n], d)
		}
	}
	out := []stageTime{
		{name: "run: start to its first step", median: first.Sub(run.Started), max: first.Sub(run.Started)},
		{name: "run: last step's end to its end", median: run.Finished.Sub(last), max: run.Finished.Sub(last)},
	}
	for _, n := range order {
		ds := perHost[n]
		slices.Sort(ds)
		out = append(out, stageTime{name: n, median: ds[len(ds)/2], max: ds[len(ds)-1]})
	}
	return out, nil
}
