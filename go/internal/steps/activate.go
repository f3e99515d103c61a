package steps

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/lollypops/lollypops/go/internal/activation"
	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/lock"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// ownActivation reports whether the rebuild builds and activates the system
// itself (package activation) instead of running nixos-rebuild on the
// host: with local evaluation or a build host (build here or there, copy
// the closure, activate),
// with reboots, to keep the running specialisation, and for a switch or
// test with rollback enabled (the guard must own the activation).
func ownActivation(e *Env) bool {
	d := &e.Host.Deployment
	return d.EvaluatesHere() || d.Reboot.Enable || d.Activation.KeepSpecialisation || guarded(e)
}

// guarded reports whether the activation runs under the guard's
// protection: confirmed by the deployer, or rolled back by the host.
func guarded(e *Env) bool {
	return e.Host.Deployment.Rollback.Enable && (e.Action == "switch" || e.Action == "test")
}

// window is how long the guard waits for the confirmation after the
// activation ended: confirm-timeout for the deployer to reach the host
// again, plus the worst case of the health checks (every attempt of every
// check timing out), so that a slow but healthy service is not rolled
// back for the checks' own length.
func window(d *config.Deployment) time.Duration {
	return time.Duration(d.Rollback.ConfirmTimeout)*time.Second + checksBudget(d.HealthChecks)
}

// checksBudget is the longest the health checks can take.
func checksBudget(checks map[string]config.HealthCheck) time.Duration {
	var s int
	for _, c := range checks {
		s += (c.Retries+1)*c.Timeout + c.Retries*c.Interval
	}
	return time.Duration(s) * time.Second
}

// RolledBack is a rebuild whose host returned to its previous system.
type RolledBack struct {
	Reason string
	Failed bool // the rollback itself failed: the host needs a person
	// Units are units that failed in the previous system again: the
	// host runs it, degraded.
	Units []string
}

func (e *RolledBack) Error() string {
	if e.Failed {
		return "the rollback failed after: " + e.Reason
	}
	msg := "rolled back to the previous system: " + e.Reason
	if len(e.Units) > 0 {
		msg += fmt.Sprintf(" (it runs again, degraded: %s failed there too)", strings.Join(e.Units, ", "))
	}
	return msg
}

// Activated is what an activation did, for the summary and the report.
type Activated struct {
	Action         string
	Specialisation string
	// Duration is how long switch-to-configuration ran.
	Duration time.Duration
	Units    activation.Units
	// NewlyFailed are the failed units that had not failed before.
	NewlyFailed []string
	Rebooted    bool
	// RebootPending says why the host should reboot to run what it was
	// given (a new kernel, initrd or kernel modules; a boot; a new init),
	// when the run did not reboot it.
	RebootPending string
}

// Note is the summary's word on the activation: the action, how long
// the switch took, the units it restarted and those that failed, a
// reboot made or pending.
func (a *Activated) Note() string {
	parts := []string{a.Action}
	if a.Specialisation != "" {
		parts[0] += " of specialisation " + a.Specialisation
	}
	if a.Duration > 0 && (a.Action == "switch" || a.Action == "test") {
		parts = append(parts, "activated in "+a.Duration.String())
	}
	switch n := len(a.Units.Restarted); {
	case n > 3:
		parts = append(parts, plural(n, "unit")+" restarted")
	case n > 0:
		parts = append(parts, "restarted: "+strings.Join(a.Units.Restarted, ", "))
	}
	if len(a.NewlyFailed) > 0 {
		parts = append(parts, "failed: "+strings.Join(a.NewlyFailed, ", "))
	}
	if a.Rebooted {
		parts = append(parts, "rebooted")
	}
	if a.RebootPending != "" {
		parts = append(parts, "reboot pending: "+a.RebootPending)
	}
	return strings.Join(parts, ", ")
}

// rebuildOwn builds the system (here or on the host), puts it on the host
// and activates it through the guard.
func rebuildOwn(ctx context.Context, e *Env, c *ssh.Client, out *Outcome) (*Activated, error) {
	h := e.Host
	d := &h.Deployment
	id, err := newID()
	if err != nil {
		return nil, err
	}
	var system string
	if d.EvaluatesHere() {
		done := e.stage("build")
		b, err := e.buildOff(ctx)
		done()
		if err != nil {
			return nil, err
		}
		system = b.system
		if e.Action == "build" {
			b.release()
			e.printf("built %s %s (not copied: REBUILD_ACTION=build)", system, builtWhere(b))
			return &Activated{Action: "build"}, nil
		}
		done = e.stage("closure copy")
		err = e.deliver(ctx, c, b)
		b.release()
		done()
		if err != nil {
			return nil, err
		}
		if err := e.prepare(ctx, c, id); err != nil {
			return nil, err
		}
		out, err := e.hostOutput(ctx, c, "registering the system", activation.PinArgv(id, system))
		if err != nil {
			return nil, err
		}
		if system, err = activation.ParseSystem(out); err != nil {
			return nil, err
		}
	} else {
		e.printf("building the system of %s on the host", h.Name)
		done := e.stage("build")
		// The state directory and the build in one session.
		out, err := e.hostOutput(ctx, c, "building the system",
			activation.Then(e.prepareArgv(id), activation.BuildArgv(d.ConfigDir+"/flake", h.Name, id, flakeDir(h))))
		done()
		if err != nil && !activation.ThenRan([]byte(out)) {
			return nil, fmt.Errorf("preparing the activation: %w", errors.Unwrap(err))
		}
		if err != nil {
			e.cleanup(ctx, c, id)
			return nil, &Hinted{Err: err, Advice: fmt.Sprintf("the build's output is above; if %s/flake is missing, run the host's deploy-flake task first", d.ConfigDir)}
		}
		if system, err = activation.ParseSystem(out); err != nil {
			return nil, err
		}
		if e.Action == "build" {
			e.cleanup(ctx, c, id)
			e.printf("built %s", system)
			return &Activated{Action: "build"}, nil
		}
	}
	// A switch asks the host about its boot next: the state directory's
	// removal goes with that.
	e.keepState = e.Action == "switch"
	act, err := e.activate(ctx, c, id, system, e.Action)
	e.keepState = false
	var nr *needsReboot
	if errors.As(err, &nr) && d.Reboot.Enable && e.Action == "switch" {
		// A new init: nothing was activated. Make it the boot default and
		// reboot into it.
		e.printf("%s needs a reboot to run the new system (%s): making it the boot default", h.Name, nr.reason)
		bootID, ierr := newID()
		if ierr != nil {
			return nil, ierr
		}
		if err := e.prepare(ctx, c, bootID); err != nil {
			return nil, err
		}
		if _, err := e.hostOutput(ctx, c, "registering the system", activation.PinArgv(bootID, system)); err != nil {
			return nil, err
		}
		if act, err = e.activate(ctx, c, bootID, system, "boot"); err != nil {
			return nil, err
		}
		// Nothing was activated before the reboot.
		act.Action, act.Duration = "switch", 0
		return act, e.rebootInto(ctx, c, bootID, system, "the new system's init needs a reboot", act, out)
	}
	if err != nil {
		return act, err
	}
	why, err := e.rebootReason(ctx, c, system)
	if err != nil || why == "" {
		return act, err
	}
	if !d.Reboot.Enable {
		if e.Action == "boot" {
			act.RebootPending = "the new system boots next"
			return act, nil
		}
		act.RebootPending = why
		e.printf("%s should reboot to run all of the new system (%s); lollypops.deployment.reboot.enable lets lollypops do it", h.Name, why)
		return act, nil
	}
	return act, e.rebootInto(ctx, c, id, system, why, act, out)
}

// rebootInto reboots the host into system, then restores the secrets the
// reboot lost and runs the health checks again.
func (e *Env) rebootInto(ctx context.Context, c *ssh.Client, id, system, why string, act *Activated, out *Outcome) error {
	if err := e.reboot(ctx, c, id, system, why); err != nil {
		return err
	}
	act.Rebooted = true
	if err := e.restoreSecrets(ctx, c, out); err != nil {
		return fmt.Errorf("after the reboot: %w", err)
	}
	if err := e.healthChecks(ctx, c); err != nil {
		return &Hinted{Err: fmt.Errorf("after the reboot: %w", err), Advice: "the host runs the new system; roll back with REBUILD_ACTION and an earlier flake, or nixos-rebuild switch --rollback on the host"}
	}
	return nil
}

// needsReboot is an activation that activated nothing because the new
// system's init needs a reboot (switch-to-configuration's exit 100).
type needsReboot struct{ reason string }

func (e *needsReboot) Error() string {
	return "the new system needs a reboot to take effect: " + e.reason
}

// prepare makes the activation's state directory on the host.
func (e *Env) prepare(ctx context.Context, c *ssh.Client, id string) error {
	return e.hostRun(ctx, c, "preparing the activation", e.prepareArgv(id))
}

func (e *Env) prepareArgv(id string) []string { return activation.PrepareArgv(id, lock.RunID(e.Run)) }

// cleanup removes the activation's state directory, once its outcome is
// read; it runs even after an interrupt.
func (e *Env) cleanup(ctx context.Context, c *ssh.Client, id string) {
	if argv, err := e.remote(c, activation.CleanupArgv(id)...); err == nil {
		e.Runner.Run(context.WithoutCancel(ctx), execx.Cmd{Argv: argv, Stderr: io.Discard})
	}
}

// params is what the guard of this step's activation is asked to do.
func (e *Env) params(system, action string) activation.Params {
	d := &e.Host.Deployment
	p := activation.Params{
		System:            system,
		Action:            action,
		InstallBootloader: d.Activation.InstallBootloader,
		NoCheck:           os.Getenv("NIXOS_NO_CHECK") == "1",
	}
	if d.Activation.ProfileName != nil {
		p.Profile = activation.ProfilePath(*d.Activation.ProfileName)
	} else {
		p.Profile = activation.ProfilePath("")
	}
	if action == "switch" || action == "test" {
		switch {
		case d.Activation.Specialisation != nil:
			p.Specialisation = *d.Activation.Specialisation
		case d.Activation.KeepSpecialisation:
			p.Specialisation = activation.Keep
		}
	}
	if d.Rollback.Enable && (action == "switch" || action == "test") {
		p.Window = window(d)
	}
	return p
}

// activate activates system on the host through its guard (package
// activation) and sees it through: guarded, it waits until the system is
// activated, reaches the host again over a connection opened after that,
// runs the health checks, and confirms — or lets the host roll back.
func (e *Env) activate(ctx context.Context, c *ssh.Client, id, system, action string) (_ *Activated, err error) {
	h := e.Host
	p := e.params(system, action)
	w := &watcher{e: e, c: c, id: id, last: string(activation.Starting), window: p.Window}
	// The state directory goes once its outcome is read, or when no
	// guard ever ran; while a guard runs, it needs it, and the next
	// run's prepare removes it once final.
	defer func() {
		switch {
		case w.final && err == nil && e.keepState:
			e.leftState = id
		case w.final || !w.started:
			e.cleanup(ctx, c, id)
		}
	}()
	if p.Window > 0 {
		e.printf("activating %s (%s); %s returns to its previous system by itself unless confirmed within %s of the activation's end",
			system, action, h.Name, p.Window)
	} else {
		e.printf("activating %s (%s)", system, action)
	}
	activating := e.stage("activation")
	// An activation cut short can leave a host half-switched: the first
	// Ctrl-C waits for it (see the step binary).
	e.protect(true)
	defer e.protect(false)
	defer w.flush()
	// The start and the first watch in one session.
	w.first, w.firstWhat = activation.StartArgv(id, p), "starting the activation"
	st, err := w.until(ctx, func(s activation.Status) bool { return s.State == activation.Activated },
		activation.Starting, activation.Activating)
	activating()
	var fe *firstError
	if errors.As(err, &fe) {
		return nil, &Hinted{Err: err, Advice: "the activation runs as a transient systemd service (systemd-run); the host's messages are above"}
	}
	if err != nil {
		return nil, err
	}
	act := &Activated{Action: action}
	rep := activation.ParseReport(st.Result, w.log.String())
	act.Specialisation, act.Duration, act.Units, act.NewlyFailed = rep.Specialisation, rep.Duration, rep.Units, rep.NewlyFailed()
	if st.Status.State == activation.Done {
		return act, e.unguardedOutcome(ctx, c, act, st, rep)
	}
	if st.Status.Final() {
		return act, e.outcome(st, w)
	}
	// Activated: waiting for the confirmation.
	e.activatedMessage(act, rep)
	if !w.freshConnection {
		// A connection opened after the activation proves that the new
		// system's sshd lets the deployer in; the old one may have
		// survived a broken sshd.
		e.printf("activated; checking that %s can be reached again", h.Name)
		c.Close(ctx)
		done := e.stage("reconnect")
		w.lockLater = true
		rerr := w.reconnect(ctx, st)
		done()
		if rerr != nil {
			return act, w.unreachable(ctx, rerr)
		}
		// The deploy lock is taken again meanwhile (no other run takes
		// it while this activation is pending: package lock); the step
		// fails if it could not be, whatever the activation's outcome.
		defer func() {
			if lerr := w.relocked(); lerr != nil && err == nil {
				err = fmt.Errorf("the new system is confirmed, but the deploy lock could not be taken again: %w", lerr)
			}
		}()
		// Without health checks the confirmation comes next, and its
		// watch sees a final state all the same.
		if len(h.Deployment.HealthChecks) > 0 {
			// Reached: the guard's window starts again, so that slow
			// health checks after a slow reconnection (many hosts at
			// once) roll back no healthy host. If the word cannot be
			// given (the state directory is gone), the watches that
			// follow say why.
			_ = e.hostRun(ctx, c, "telling the guard the host was reached", activation.ReachedArgv(id))
			// The guard may have given up meanwhile: no health check
			// runs for a host that rolled back.
			if st, err = w.peek(ctx); err != nil {
				return act, err
			}
			if st.Status.Final() {
				return act, e.outcome(st, w)
			}
		}
	}
	if cerr := e.healthChecks(ctx, c); cerr != nil {
		e.printf("%v; rolling back", cerr)
		if err := e.hostRun(ctx, c, "asking for the rollback", activation.AbortArgv(id, cerr.Error())); err != nil {
			return act, err
		}
		st, err := w.until(ctx, activation.Status.Final, activation.Activated, activation.RollingBack)
		if err != nil {
			return act, err
		}
		return act, e.outcome(st, w)
	}
	confirming := e.stage("confirm")
	// The confirmation and the watch for the outcome in one session.
	w.first, w.firstWhat = activation.ConfirmArgv(id), "confirming the activation"
	if e.keepState {
		// Once it saw the switch confirmed, that session also asks about
		// the boot and removes the state directory (rebootReason).
		w.after = activation.Then(activation.BootChangesArgv(system), activation.CleanupArgv(id))
	}
	st, err = w.until(ctx, activation.Status.Final, activation.Activated, activation.Confirming)
	confirming()
	if w.afterRan {
		e.changes = &changes{out: w.afterOut, err: w.afterErr}
	}
	if err != nil {
		return act, err
	}
	if st.Status.State != activation.Confirmed {
		return act, e.outcome(st, w)
	}
	e.printf("confirmed: %s runs %s", h.Name, system)
	return act, nil
}

// activatedMessage says what the activation did to the units.
func (e *Env) activatedMessage(act *Activated, rep activation.Report) {
	var parts []string
	if act.Duration > 0 {
		parts = append(parts, "in "+act.Duration.String())
	}
	if n := len(act.Units.Restarted) + len(act.Units.Started) + len(act.Units.Reloaded); n > 0 {
		parts = append(parts, plural(n, "unit")+" restarted, started or reloaded")
	}
	if len(act.NewlyFailed) > 0 {
		parts = append(parts, "failed: "+strings.Join(act.NewlyFailed, ", ")+" (the health checks decide)")
	}
	if old := slices.DeleteFunc(slices.Clone(act.Units.Failed), func(u string) bool { return slices.Contains(act.NewlyFailed, u) }); len(old) > 0 {
		parts = append(parts, "failing before too: "+strings.Join(old, ", "))
	}
	if len(parts) > 0 {
		e.printf("activated %s", strings.Join(parts, "; "))
	}
}

// unguardedOutcome reads an activation without the guard's protection, as
// nixos-rebuild would have left it; the health checks run after a
// successful one.
func (e *Env) unguardedOutcome(ctx context.Context, c *ssh.Client, act *Activated, w activation.Watch, rep activation.Report) error {
	action := act.Action
	switch rep.ExitCode {
	case 0, 4:
		if rep.ExitCode == 4 {
			e.activatedMessage(act, rep)
		}
		if action == "switch" || action == "test" {
			if err := e.healthChecks(ctx, c); err != nil {
				return &Hinted{Err: err, Advice: "the new system stays active: rollback is disabled for this host (lollypops.deployment.rollback.enable)"}
			}
		}
		return nil
	case 100:
		if action == "switch" {
			// As nixos-rebuild leaves it: the boot default, not running.
			act.RebootPending = "the new system's init needs a reboot"
			return &needsReboot{reason: "its init is incompatible with the running one's; it is the boot default"}
		}
		return &Hinted{Err: &needsReboot{reason: "its init is incompatible with the running one's"},
			Advice: "a test cannot activate it; deploy with REBUILD_ACTION=boot and reboot the host"}
	}
	return &Hinted{Err: fmt.Errorf("switch-to-configuration %s failed (exit %d)", action, rep.ExitCode), Advice: "its output is above"}
}

// outcome is the error of a final state other than confirmed.
func (e *Env) outcome(w activation.Watch, wt *watcher) error {
	st := w.Status
	switch st.State {
	case activation.Confirmed:
		return nil
	case activation.RollbackFailed:
		return &Hinted{Err: &RolledBack{Reason: st.Reason, Failed: true},
			Advice: "the host may run a mix of both systems: look at it now (nixos-rebuild list-generations, journalctl)"}
	case activation.RolledBack:
		rb := &RolledBack{Reason: st.Reason}
		if wt.reachErr != nil && strings.HasPrefix(st.Reason, "no confirmation") {
			rb.Reason += fmt.Sprintf(" (the deployer could not reach it again in time: %v)", wt.reachErr)
		}
		if w.Result["rollback_rc"] == "4" {
			if runs := activation.ParseUnits(wt.log.String()); len(runs) > 0 {
				rb.Units = runs[len(runs)-1].Failed
			}
		}
		return &Hinted{Err: rb, Advice: "the activation's output is above; the host runs, and boots, what it did before"}
	case activation.Refused:
		hint := "nothing was activated: the host runs, and boots, what it did before; the output is above"
		switch {
		case strings.Contains(wt.log.String(), "Pre-switch checks failed"):
			hint = "the new system's pre-switch checks refused it (their output is above); NIXOS_NO_CHECK=1 in lollypops' environment skips them"
		case strings.Contains(st.Reason, "lock"):
			hint = "another switch-to-configuration ran on the host (nixos-rebuild, system.autoUpgrade); deploy again once it is done"
		case strings.Contains(st.Reason, "specialisation"):
			hint = "lollypops.deployment.activation.specialisation names one of the system's specialisations"
		}
		return &Hinted{Err: fmt.Errorf("not activated: %s", st.Reason), Advice: hint}
	case activation.NeedsReboot:
		return &Hinted{Err: &needsReboot{reason: "its init is incompatible with the running one's; nothing was activated"},
			Advice: "deploy with REBUILD_ACTION=boot and reboot the host, or set lollypops.deployment.reboot.enable to let lollypops do it"}
	case activation.Superseded:
		return &Hinted{Err: fmt.Errorf("not confirmed: %s", st.Reason),
			Advice: "another switch ran on the host during the activation; look at what it runs (nixos-rebuild list-generations)"}
	}
	return fmt.Errorf("unexpected activation status %q", st.Line)
}

// The watcher follows one activation's guard from the deployer.
type watcher struct {
	e      *Env
	c      *ssh.Client
	id     string
	window time.Duration
	// last is the status line last seen, offset how much of the log.
	last   string
	offset int64
	// log is the whole log; partial the end of it not yet shown.
	log, partial bytes.Buffer
	// contact is when the host last answered; remaining how long the
	// guard still waited then.
	contact   time.Time
	remaining time.Duration
	activated bool
	// freshConnection is set once the connection was opened after the
	// activation was seen to end.
	freshConnection bool
	recovering      bool
	// started: the guard was started; final: its final state was read.
	started, final bool
	// reachErr is why a new connection failed, when one did.
	reachErr error
	// lockLater: the next reconnect takes the deploy lock again in the
	// background; relock is where its outcome arrives.
	lockLater bool
	relock    chan error
	// first is a command that the next watch runs before it, in the
	// same session (activation.Then), and firstWhat what it does; through
	// the states the watches wait through.
	first     []string
	firstWhat string
	through   []activation.State
	// after is a command that the watch with first runs in the same
	// session once it saw the activation confirmed (activation.After);
	// afterRan says it ran, with what it printed and its error.
	after    []string
	afterRan bool
	afterOut []byte
	afterErr error
}

// firstError is a watcher's first command that failed: not a lost
// connection to reconnect after, the step's error.
type firstError struct{ err error }

func (e *firstError) Error() string { return e.err.Error() }
func (e *firstError) Unwrap() error { return e.err }

// errGone is an activation whose state directory is gone: the host
// rebooted (or /run was emptied) meanwhile.
var errGone = errors.New("the activation's state is gone")

// watchMax is how long one watch waits on the host.
const watchMax = 5 * time.Second

// until watches the activation until done says so or its state is final,
// reconnecting when the connection drops, and finishing it with a
// recovery unit when its guard stops without a final state.
//
// Each watch on the host waits while the state is one of through: a state
// the deployer has nothing to do in costs no session of its own.
func (w *watcher) until(ctx context.Context, done func(activation.Status) bool, through ...activation.State) (activation.Watch, error) {
	if w.contact.IsZero() {
		w.contact = time.Now()
	}
	w.through = through
	for {
		st, err := w.watch(ctx)
		var fe *firstError
		if errors.As(err, &fe) {
			return st, err
		}
		if err == nil {
			if st.Status.Final() || done(st.Status) {
				return st, nil
			}
			if !st.Alive {
				if err := w.recover(ctx, st); err != nil {
					return st, err
				}
			}
			continue
		}
		if ctx.Err() != nil {
			return st, ctx.Err()
		}
		if errors.Is(err, errGone) {
			return st, &Hinted{Err: fmt.Errorf("%s rebooted during the activation: its state in %s is gone", w.e.Host.Name, activation.Dir(w.id)),
				Advice: "a host that reboots before the confirmation boots the system it booted before; look at what it runs now"}
		}
		w.e.printf("lost the connection to %s during the activation (%v); connecting again", w.e.Host.Name, err)
		w.c.Close(ctx)
		if err := w.reconnect(ctx, activation.Watch{}); err != nil {
			return st, w.unreachable(ctx, err)
		}
	}
}

// peek reads the activation's status at once.
func (w *watcher) peek(ctx context.Context) (activation.Watch, error) {
	w.last = ""
	return w.until(ctx, func(activation.Status) bool { return true })
}

// watch runs one watch on the host.
func (w *watcher) watch(ctx context.Context) (activation.Watch, error) {
	e := w.e
	argv := activation.WatchArgv(w.id, w.last, w.offset, watchMax, w.through...)
	first, after := w.first, w.after
	var mark string
	if first != nil && after != nil {
		argv = activation.WatchConfirmedArgv(w.id, w.last, w.offset, watchMax, w.through...)
	}
	if first != nil {
		argv = activation.Then(first, argv)
		w.first = nil // once, whatever happens
		if after != nil {
			w.after = nil
			var err error
			if mark, err = newID(); err != nil {
				return activation.Watch{}, err
			}
			argv = activation.After(argv, mark, after)
		}
	}
	argv, show, err := e.remoteShown(w.c, argv)
	if err != nil {
		return activation.Watch{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, watchMax+30*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	stderrTo := io.Writer(&stderr)
	if first != nil {
		// The first command's messages are the user's.
		stderrTo = io.MultiWriter(&stderr, e.Stderr)
	}
	// A first command is out of the terminal's Ctrl-C, as a command of
	// its own would be (hostOutput).
	out, err := e.Runner.Output(wctx, execx.Cmd{Argv: argv, Show: show, Stderr: stderrTo, Detach: first != nil})
	if mark != "" {
		// The watch printed "confirmed" and what came after ran: its
		// error is its own.
		if f, s, ran := activation.AfterSplit(out, mark); ran {
			w.afterRan, w.afterOut, w.afterErr = true, s, err
			out, err = f, nil
		}
	}
	if first != nil {
		if !activation.ThenRan(out) {
			if err == nil {
				err = errors.New("no answer from the host")
			}
			return activation.Watch{}, &firstError{fmt.Errorf("%s: %w", w.firstWhat, err)}
		}
		w.started = true
	}
	if err != nil {
		var xe *execx.Error
		if errors.As(err, &xe) && xe.ExitCode == 3 && strings.Contains(stderr.String(), "the host rebooted") {
			return activation.Watch{}, errGone
		}
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			err = fmt.Errorf("%w: %s", err, lastLine(msg))
		}
		return activation.Watch{}, err
	}
	st, err := activation.ParseWatch(out)
	if err != nil {
		return st, err
	}
	w.contact = time.Now()
	w.last, w.offset, w.final = st.Status.Line, w.offset+int64(len(st.Log)), st.Status.Final()
	w.log.Write(st.Log)
	w.show(st.Log)
	if st.Status.State == activation.Activated {
		w.activated = true
		if r, ok := st.Remaining(); ok {
			w.remaining = r
		}
	}
	return st, nil
}

// show prints the log's complete lines.
func (w *watcher) show(b []byte) {
	w.partial.Write(b)
	for {
		line, err := w.partial.ReadString('\n')
		if err != nil {
			w.partial.Reset()
			w.partial.WriteString(line)
			return
		}
		fmt.Fprint(w.e.Stderr, line)
	}
}

// flush prints what is left of the log.
func (w *watcher) flush() {
	if w.partial.Len() > 0 {
		fmt.Fprintln(w.e.Stderr, w.partial.String())
		w.partial.Reset()
	}
}

// recover starts the recovery unit of an activation whose guard stopped
// without a final state.
func (w *watcher) recover(ctx context.Context, st activation.Watch) error {
	if w.recovering {
		return &Hinted{Err: fmt.Errorf("the activation's guard and its recovery stopped without finishing (status %q)", st.Status.Line),
			Advice: "look at the host now: " + activation.Dir(w.id) + " has the activation's state and log"}
	}
	w.recovering = true
	w.e.printf("the activation's guard on %s stopped in state %q without finishing (killed, or out of memory); finishing it",
		w.e.Host.Name, st.Status.State)
	return w.e.hostRun(ctx, w.c, "starting the activation's recovery", activation.RecoverArgv(w.id))
}

// reconnect opens a new shared connection and takes the deploy lock
// again (its holder's session ended with the old connection), retrying
// until the host cannot be waiting any more. A connection opened after
// the activation was seen to end proves the host reachable.
func (w *watcher) reconnect(ctx context.Context, st activation.Watch) error {
	e := w.e
	_ = w.relocked() // one taken in the background: this one takes it again
	if r, ok := st.Remaining(); ok {
		w.remaining, w.contact = r, time.Now()
	}
	fresh := w.activated
	// While the guard waits, until its window ends (it rolls back then);
	// while it activates, its window is still to come.
	deadline := w.contact.Add(max(w.remaining, w.window) + 90*time.Second)
	if w.activated {
		deadline = w.contact.Add(w.remaining + 90*time.Second)
	}
	if err := e.reconnect(ctx, w.c, deadline, func(err error) {
		if w.reachErr == nil {
			w.reachErr = err
		}
	}); err != nil {
		return err
	}
	if w.lockLater {
		w.lockLater = false
		w.relock = make(chan error, 1)
		go func() { w.relock <- e.relock(ctx, w.c) }()
	} else if err := e.relock(ctx, w.c); err != nil {
		return err
	}
	if fresh {
		w.freshConnection = true
	}
	return nil
}

// relocked waits for the deploy lock taken again in the background, if it
// was.
func (w *watcher) relocked() error {
	if w.relock == nil {
		return nil
	}
	err := <-w.relock
	w.relock = nil
	return err
}

// unreachable is the error of an activation whose host could not be
// reached again: what the host does by itself.
func (w *watcher) unreachable(ctx context.Context, err error) error {
	if w.window > 0 {
		return &Hinted{Err: fmt.Errorf("cannot reach %s again (%v); unless confirmed, it returns to its previous system by itself within %s of the activation's end",
			w.e.Host.Name, err, w.window),
			Advice: "check the host's console; the activation's status is in " + activation.Dir(w.id) + "/status"}
	}
	return &Hinted{Err: fmt.Errorf("cannot reach %s again during the activation (%v)", w.e.Host.Name, err),
		Advice: "check the host's console; the activation's status is in " + activation.Dir(w.id) + "/status"}
}

// reconnect opens a new shared connection, retrying until deadline;
// failed says why each attempt failed.
func (e *Env) reconnect(ctx context.Context, c *ssh.Client, deadline time.Time, failed func(error)) error {
	for {
		err := c.Ensure(ctx, e.quietRunner())
		if err == nil {
			return nil
		}
		failed(err)
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// quietRunner runs commands without echoing them: a reconnect loop would
// print one line per attempt.
func (e *Env) quietRunner() *execx.Runner {
	return &execx.Runner{Stdout: e.Runner.Stdout, Stderr: e.Runner.Stderr}
}

func (e *Env) protect(on bool) {
	if e.Protect != nil {
		e.Protect.Store(on)
	}
}

// hostRun runs argv on the host (through sudo when enabled).
func (e *Env) hostRun(ctx context.Context, c *ssh.Client, what string, argv []string) error {
	_, err := e.hostOutput(ctx, c, what, argv)
	return err
}

// hostOutput runs argv on the host and returns its standard output; its
// standard error reaches the user.
func (e *Env) hostOutput(ctx context.Context, c *ssh.Client, what string, argv []string) (string, error) {
	full, show, err := e.remoteShown(c, argv)
	if err != nil {
		return "", err
	}
	out, err := e.Runner.Output(ctx, execx.Cmd{Argv: full, Show: show, Stderr: e.Stderr, Detach: true})
	if err != nil {
		return string(out), fmt.Errorf("%s: %w", what, err)
	}
	return string(out), nil
}

// buildHere builds the host's system on this machine; the result is a GC
// root in the run directory while the run lasts.
func buildHere(ctx context.Context, e *Env) (string, error) {
	h := e.Host
	link := filepath.Join(e.Run.Path, "system-"+h.Name)
	attr := fmt.Sprintf("%s#nixosConfigurations.%q.config.system.build.toplevel", config.FlakeRef(h.FlakeSource()), h.Name)
	e.printf("building the system of %s here", h.Name)
	return buildHereTo(ctx, e, nixArgs("build", "--out-link", link, attr), e.Stderr, link, "the system",
		"local evaluation builds here; install Nix, or set local-evaluation = false")
}

// buildHereTo runs argv, a build on this machine whose result link is
// link (a GC root while the run lasts), and returns the store path it
// points to. what names the result and notFound is the hint when the
// program is missing.
func buildHereTo(ctx context.Context, e *Env, argv []string, stdout io.Writer, link, what, notFound string) (string, error) {
	if err := e.Runner.Run(ctx, execx.Cmd{Argv: argv, Stdout: stdout, Stderr: e.Stderr}); err != nil {
		if xe, ok := err.(*execx.Error); ok && xe.NotFound {
			return "", &Hinted{Err: fmt.Errorf("%s: not found on this machine", argv[0]), Advice: notFound}
		}
		return "", &Hinted{Err: fmt.Errorf("building %s: %w", what, err), Advice: "the build's output is above"}
	}
	out, err := os.Readlink(link)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(out, "/nix/store/") {
		return "", fmt.Errorf("building %s: %s is not a store path", what, out)
	}
	return out, nil
}

// copyClosure copies the system's closure to the host over the shared
// connection.
func (e *Env) copyClosure(ctx context.Context, c *ssh.Client, system string) error {
	return e.copyPaths(ctx, c, "the system's closure", system)
}

// copyPaths copies the closure of a store path to the host over the shared
// connection; what names it for messages.
func (e *Env) copyPaths(ctx context.Context, c *ssh.Client, what, storePath string) error {
	bin, err := e.wrapper(c)
	if err != nil {
		return err
	}
	e.printf("copying %s to %s", what, e.Host.Name)
	argv := nixArgs("copy", "--to", c.StoreURL(), "--substitute-on-destination", storePath)
	if err := e.Runner.Run(ctx, execx.Cmd{Argv: argv, Path: bin, Stdout: e.Stderr, Stderr: e.Stderr}); err != nil {
		return &Hinted{Err: fmt.Errorf("copying %s: %w", what, err),
			Advice: "the host's ssh user must be able to add paths to its Nix store (root, or a trusted user of its nix-daemon)"}
	}
	return nil
}

func newID() (string, error) {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
