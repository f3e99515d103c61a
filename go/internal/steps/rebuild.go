package steps

import (
	"context"
	_ "embed"
	"fmt"
	"os"

	"slices"
	"strings"

	"github.com/lollypops/lollypops/go/internal/activation"
	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/flakelink"
	"github.com/lollypops/lollypops/go/internal/plan"
	"github.com/lollypops/lollypops/go/internal/secrets"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// rebuildScript runs nixos-rebuild on the host with the flake that
// <config-dir>/flake points to (rebuild.sh, after flakelink's fragment
// that resolves the link).
var rebuildScript = flakelink.WithResolve(rebuildFile)

//go:embed rebuild.sh
var rebuildFile string

// rebuildArgs runs nixos-rebuild on the host with the deployed flake. (With
// local evaluation, the rebuild activates itself: see activate.go.)
func rebuildArgs(e *Env, c *ssh.Client) ([]string, error) {
	d := &e.Host.Deployment
	return e.remote(c, rebuildArgv(rebuildScript, d.ConfigDir, e.Action, e.Host.Name, flakeDir(e.Host), rebuildOptions(e)...)...)
}

// rebuildOptions are nixos-rebuild's options for the host's activation
// settings; the first is "1" when NIXOS_NO_CHECK=1 is to reach
// switch-to-configuration (nixos-rebuild-ng passes it on; 24.11's bash
// nixos-rebuild does not).
func rebuildOptions(e *Env) []string {
	a := &e.Host.Deployment.Activation
	noCheck := ""
	if os.Getenv("NIXOS_NO_CHECK") == "1" {
		noCheck = "1"
	}
	opts := []string{noCheck}
	if a.InstallBootloader && (e.Action == "switch" || e.Action == "boot") {
		opts = append(opts, "--install-bootloader")
	}
	if a.Specialisation != nil && (e.Action == "switch" || e.Action == "test") {
		opts = append(opts, "--specialisation", *a.Specialisation)
	}
	if a.ProfileName != nil {
		opts = append(opts, "--profile-name", *a.ProfileName)
	}
	return opts
}

// flakeDir is the directory of the host's flake.nix in its source ("" at
// the root): a ?dir= flake.
func flakeDir(h *config.Host) string {
	_, dir := h.FlakeSource()
	return dir
}

func rebuildArgv(script, configDir, action, host, dir string, opts ...string) []string {
	if len(opts) == 0 {
		opts = []string{""}
	}
	return append([]string{"sh", "-c", script, "lollypops-rebuild", flakelink.Path(configDir), action, host, dir}, opts...)
}

// rebuildShown is the rebuild's command line for --verbose and --dry, with
// the script replaced by what it runs.
func rebuildShown(e *Env, c *ssh.Client) (string, error) {
	d := &e.Host.Deployment
	what := fmt.Sprintf("<lollypops rebuild: nixos-rebuild %s --flake path:<the store path %s/flake points to>#%s>", e.Action, d.ConfigDir, e.Host.Name)
	argv, err := e.remote(c, rebuildArgv(what, d.ConfigDir, e.Action, e.Host.Name, flakeDir(e.Host), rebuildOptions(e)...)...)
	return execx.Quote(argv), err
}

// Rebuild builds and activates the host's configuration. When deploy-secrets
// deferred to it (ActivationFollows), it then deploys the post-activation
// secrets and sets the owners that activation created.
func Rebuild(ctx context.Context, e *Env) (Outcome, error) {
	if err := plan.CheckAction(e.Action); err != nil {
		return Outcome{}, err
	}
	h := e.Host
	if h.Home != nil {
		if err := checkHomeAction(e); err != nil {
			return Outcome{}, err
		}
	}
	c, err := e.connect(ctx)
	if err != nil {
		return Outcome{}, err
	}
	if h.Home != nil {
		note, err := homeRebuild(ctx, e, c)
		if err != nil {
			return Outcome{}, err
		}
		return e.afterActivation(ctx, c, Outcome{Note: note})
	}
	if ownActivation(e) {
		var out Outcome
		act, err := rebuildOwn(ctx, e, c, &out)
		out.Activation = act
		if act != nil {
			out.Note = act.Note()
		}
		if err != nil {
			return out, err
		}
		return e.afterActivation(ctx, c, out)
	}
	argv, err := rebuildArgs(e, c)
	if err != nil {
		return Outcome{}, err
	}
	show, err := rebuildShown(e, c)
	if err != nil {
		return Outcome{}, err
	}
	cmd := execx.Cmd{Argv: argv, Show: show, Stdout: e.Stdout, Stderr: e.Stderr, Detach: true}
	e.printf("nixos-rebuild %s of %s (on the host)", e.Action, h.Name)
	// An activation cut short can leave a host half-switched: the first
	// Ctrl-C waits for it (see the step binary).
	e.protect(true)
	done := e.stage("nixos-rebuild")
	err = e.Runner.Run(ctx, cmd)
	done()
	e.protect(false)
	if err != nil {
		return Outcome{}, rebuildError(e, err)
	}
	if plan.Activates(e.Action) {
		if err := e.healthChecks(ctx, c); err != nil {
			return Outcome{}, &Hinted{Err: err, Advice: "the new system stays active: rollback is disabled for this host (lollypops.deployment.rollback.enable)"}
		}
	}
	return e.afterActivation(ctx, c, Outcome{Note: e.Action})
}

// afterActivation deploys the secrets that wait for the activation.
func (e *Env) afterActivation(ctx context.Context, c *ssh.Client, out Outcome) (Outcome, error) {
	if e.ActivationFollows && plan.Activates(e.Action) {
		more, err := postActivation(ctx, e, c, &out)
		if err != nil {
			return out, err
		}
		if more != "" {
			out.Note += ", " + more
		}
	}
	return out, nil
}

func rebuildError(e *Env, err error) error {
	hint := fmt.Sprintf("the output of nixos-rebuild is above; if %s/flake is missing, run the host's deploy-flake task first", e.Host.Deployment.ConfigDir)
	return &Hinted{Err: fmt.Errorf("nixos-rebuild %s: %w", e.Action, err), Advice: hint}
}

// restoreSecrets writes again, after a reboot, the host's secrets that the
// reboot took with its tmpfs (the default directory, /run/keys, is one):
// the ones written before the activation, and those written after it
// unless this run writes them next. Their commands run again: values are
// never kept between steps. The files written are added to out.
func (e *Env) restoreSecrets(ctx context.Context, c *ssh.Client, out *Outcome) error {
	var paths []string
	for _, f := range e.Host.Secrets.Files {
		if e.ActivationFollows && f.UploadAt == config.PostActivation {
			continue
		}
		paths = append(paths, f.Path)
	}
	if len(paths) == 0 {
		return nil
	}
	missing, err := e.hostOutput(ctx, c, "looking for the secrets the reboot took", activation.MissingArgv(paths))
	if err != nil {
		return err
	}
	gone := strings.Split(strings.TrimSpace(missing), "\n")
	var files []*config.Secret
	for i := range e.Host.Secrets.Files {
		if f := &e.Host.Secrets.Files[i]; slices.Contains(gone, f.Path) && slices.Contains(paths, f.Path) {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return nil
	}
	e.printf("the reboot took %s with its tmpfs: writing them again", plural(len(files), "secret"))
	values, err := secrets.Fetch(ctx, e.Runner, files, e.Stdin, e.Stderr, e.Stages.Begin)
	if err != nil {
		return secretError(err)
	}
	rep, err := e.send(ctx, c, &secrets.Stream{Values: values})
	out.Secrets = append(out.Secrets, e.written(rep)...)
	if err != nil {
		return err
	}
	// Changed only when the manifest had another value (or none).
	_, err = e.rotate(ctx, c, rep.Changed, out)
	return err
}
