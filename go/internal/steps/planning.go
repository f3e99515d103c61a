package steps

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/lollypops/lollypops/go/internal/closure"
	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/planfile"
	"github.com/lollypops/lollypops/go/internal/secrets"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// manifestScript (manifest.sh) prints the checksum lines of the host's
// secrets manifest.
//
//go:embed manifest.sh
var manifestScript string

// planSalt returns the salt of the plan this run makes, "" when the run
// makes none (lollypops plan writes it, package planfile).
func (e *Env) planSalt() (string, error) {
	data, err := os.ReadFile(planfile.SaltFile(e.Run.Path))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	return strings.TrimSpace(string(data)), err
}

// planHost records, for lollypops plan, what deploying the host would do:
// the diff step's systems and closure diff, and its secrets, each by a
// salted checksum and whether it would change, with the units their
// change restarts or reloads. The secret commands run here, as in a
// deploy; the values and their plain checksums stay in memory.
func (e *Env) planHost(ctx context.Context, c *ssh.Client, salt, system string, diff *closure.Diff) error {
	h := e.Host
	if !h.Deployment.EvaluatesHere() {
		// apply evaluates the system here: a plan it could never match
		// is better refused now.
		here, err := EvalSystem(ctx, e)
		if err != nil {
			return err
		}
		if here != system {
			return &Hinted{Err: fmt.Errorf("the system evaluated here (%s) is not the one the host built (%s): lollypops apply could not check this host", here, system),
				Advice: "the host's Nix evaluates the flake otherwise than this machine's (another Nix version, impure evaluation?); deploy this host without a plan"}
		}
	}
	p := &planfile.Host{Flake: h.Flake, System: system, Current: diff.Before.Toplevel, Diff: diff,
		Reboot:  diff.Kernel.Changed || diff.Initrd.Changed,
		Secrets: []planfile.Secret{}, RestartUnits: []string{}, ReloadUnits: []string{}}
	files := make([]*config.Secret, len(h.Secrets.Files))
	for i := range h.Secrets.Files {
		files[i] = &h.Secrets.Files[i]
	}
	values, err := secrets.Fetch(ctx, e.Runner, files, e.Stdin, e.Stderr, e.Stages.Begin)
	if err != nil {
		return secretError(err)
	}
	known := map[string]string{}
	if len(values) > 0 {
		out, err := e.hostOutput(ctx, c, "reading the host's secrets manifest", []string{"sh", "-c", manifestScript, "lollypops-manifest", manifestPath(h)})
		if err != nil {
			return err
		}
		known = manifestSums(out)
	}
	var changed []*config.Secret
	for _, v := range values {
		sum, err := planfile.Sum(salt, h.Name, v.Secret.Label(), v.Secret.Path, v.Data)
		if err != nil {
			return err
		}
		plain := sha256.Sum256(v.Data)
		changes := known[v.Secret.Path] != hex.EncodeToString(plain[:])
		p.Secrets = append(p.Secrets, planfile.Secret{Name: v.Secret.Label(), Path: v.Secret.Path,
			UploadAt: v.Secret.UploadAt, Checksum: sum, Changes: changes})
		if changes {
			changed = append(changed, v.Secret)
		}
	}
	p.RestartUnits, p.ReloadUnits = unitsOf(changed)
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	file := planfile.PartFile(e.Run.Path, h.Name)
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return err
	}
	n := len(changed)
	e.printf("planned: %s, %d would change", plural(len(values), "secret"), n)
	return nil
}

// manifestSums reads manifest.sh's lines: path → the sha256 of the value
// the host has.
func manifestSums(out string) map[string]string {
	sums := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(l, "sha256=")
		if !ok {
			continue
		}
		if sum, p, ok := strings.Cut(rest, " "); ok {
			sums[p] = sum
		}
	}
	return sums
}

// applied returns the host's entry of the plan this run applies, nil when
// the run applies none.
func (e *Env) applied() (*planfile.Applied, error) {
	data, err := os.ReadFile(planfile.ApplyFile(e.Run.Path, e.Host.Name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	a := &planfile.Applied{}
	if err := json.Unmarshal(data, a); err != nil || a.Host == nil {
		return nil, fmt.Errorf("the plan's entry for %s: %v", e.Host.Name, err)
	}
	return a, nil
}

// PlanRefusal is a host that a run applying a plan does not change: what
// it would deploy is not what the plan recorded.
type PlanRefusal struct{ What string }

func (r *PlanRefusal) Error() string { return "refused: " + r.What + " differs from the plan" }
func (r *PlanRefusal) Hint() string {
	return "nothing of the plan was applied to this host; run lollypops plan again, review it, and apply the new plan"
}

// checkPlanned refuses values that are not the plan's, when the run
// applies a plan: before anything of them is sent.
func (e *Env) checkPlanned(values []secrets.Value) error {
	a, err := e.applied()
	if err != nil || a == nil {
		return err
	}
	for _, v := range values {
		name := v.Secret.Label()
		i := slices.IndexFunc(a.Host.Secrets, func(s planfile.Secret) bool { return s.Name == name && s.Path == v.Secret.Path })
		if i < 0 {
			return &Hinted{Err: fmt.Errorf("refused: secret %q is not in the plan; nothing was written", name),
				Advice: "the host's secrets changed since the plan: run lollypops plan again"}
		}
		sum, err := planfile.Sum(a.Salt, e.Host.Name, name, v.Secret.Path, v.Data)
		if err != nil {
			return err
		}
		if sum != a.Host.Secrets[i].Checksum {
			return &Hinted{Err: fmt.Errorf("refused: secret %q differs from the plan; nothing was written", name),
				Advice: "its command printed another value than when the plan was made: run lollypops plan again " +
					"(a command that prints a new value each time, such as head -c 48 /dev/urandom, never matches a plan)"}
		}
	}
	return nil
}

// Running returns the store path of the system the host runs ("" for
// none), read as the ssh user over the run's shared connection, without
// the deploy lock: lollypops apply compares it with the plan's before the
// host's steps start.
func Running(ctx context.Context, e *Env) (string, error) {
	c, err := e.open(ctx)
	if err != nil {
		return "", err
	}
	cmd, err := ssh.Command(nil, "sh", "-c", deployedScript, "lollypops-deployed", "/", "/run/current-system")
	if err != nil {
		return "", err
	}
	out, err := e.Runner.Output(ctx, execx.Cmd{Argv: c.RemoteArgs(cmd), Stderr: e.Stderr})
	if err != nil {
		return "", fmt.Errorf("reading the running system: %w", err)
	}
	lines := strings.Split(string(out), "\n")
	if len(lines) < 2 {
		return "", fmt.Errorf("reading the running system: unexpected output %q", out)
	}
	sys := lines[1]
	if sys != "" && (!strings.HasPrefix(sys, "/nix/store/") || strings.ContainsAny(sys, " \t")) {
		return "", fmt.Errorf("reading the running system: %q is not a store path", sys)
	}
	return sys, nil
}

// EvalSystem evaluates, on this machine, the store path of the host's new
// system without building it: lollypops apply compares it with the plan's.
func EvalSystem(ctx context.Context, e *Env) (string, error) {
	h := e.Host
	attr := fmt.Sprintf("%s#nixosConfigurations.%q.config.system.build.toplevel.outPath", config.FlakeRef(h.FlakeSource()), h.Name)
	out, err := e.Runner.Output(ctx, execx.Cmd{Argv: nixArgs("eval", "--raw", attr), Stderr: e.Stderr})
	if err != nil {
		if xe, ok := err.(*execx.Error); ok && xe.NotFound {
			return "", &Hinted{Err: fmt.Errorf("nix: not found on this machine"), Advice: "applying a plan evaluates each host's system here; install Nix"}
		}
		return "", &Hinted{Err: fmt.Errorf("evaluating the system: %w", err), Advice: "nix's output is above"}
	}
	sys := strings.TrimSpace(string(out))
	if !strings.HasPrefix(sys, "/nix/store/") || strings.ContainsAny(sys, " \n") {
		return "", fmt.Errorf("evaluating the system: %q is not a store path", sys)
	}
	return sys, nil
}

// checkRunningLocked, when the run applies a plan, compares the system
// the host runs with the plan's once the run holds the host's deploy
// lock, at the host's first step that takes it: lollypops apply compared
// them before, without the lock, and a deploy may have come in between.
// Later steps of the host do not look again (its own activation changes
// the running system).
func (e *Env) checkRunningLocked(ctx context.Context) error {
	a, err := e.applied()
	if err != nil || a == nil {
		return err
	}
	marker := planfile.ApplyFile(e.Run.Path, e.Host.Name) + ".locked"
	if _, err := os.Stat(marker); err == nil {
		return nil
	}
	cur, err := Running(ctx, e)
	if err != nil {
		return err
	}
	if cur != a.Host.Current {
		return RunningDiffers(cur, a.Host.Current)
	}
	return os.WriteFile(marker, nil, 0o600)
}

// RunningDiffers refuses a host that runs another system than the plan
// says it did.
func RunningDiffers(running, planned string) error {
	return &PlanRefusal{What: fmt.Sprintf("the system the host runs (%s, the plan's %s: deployed since the plan?)", orNone(running), orNone(planned))}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
