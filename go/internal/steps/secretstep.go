package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/secrets"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// manifestPath is where the host keeps the list of secret files lollypops
// wrote, to find the ones no longer configured.
func manifestPath(h *config.Host) string {
	if h.Home != nil {
		return homeManifest(h.Home.Directory)
	}
	return path.Join(h.Deployment.ConfigDir, "secrets.manifest")
}

// pendingFile keeps, between deploy-secrets and rebuild, the secrets that
// were written before their owner existed.
func (e *Env) pendingFile() string { return e.Run.SSH(e.Host.Name) + ".pending.json" }

// DeploySecrets runs every secret command of the host here and writes the
// values on the host in one ssh session. When the activation follows in
// this run, post-activation secrets wait for it (see Rebuild).
func DeploySecrets(ctx context.Context, e *Env) (Outcome, error) {
	var files []*config.Secret
	for i := range e.Host.Secrets.Files {
		f := &e.Host.Secrets.Files[i]
		if e.ActivationFollows && f.UploadAt == config.PostActivation {
			continue
		}
		files = append(files, f)
	}
	deferred := len(e.Host.Secrets.Files) - len(files)
	// All commands run before the host is contacted: a failing one means
	// nothing is written and no connection is made.
	values, err := secrets.Fetch(ctx, e.Runner, files, e.Stdin, e.Stderr, e.Stages.Begin)
	if err != nil {
		return Outcome{}, secretError(err)
	}
	if err := e.checkPlanned(values); err != nil {
		return Outcome{}, err
	}
	c, err := e.connect(ctx)
	if err != nil {
		return Outcome{}, err
	}
	rep, err := e.send(ctx, c, &secrets.Stream{Values: values, Soft: e.ActivationFollows})
	out := Outcome{Secrets: e.written(rep)}
	if err != nil {
		return out, err
	}
	// A changed file written without its owner is restarted for once it
	// has its owner, after the activation (see postActivation).
	var changed []string
	for _, p := range rep.Changed {
		if i := slices.IndexFunc(rep.Pending, func(q secrets.Pending) bool { return q.Path == p }); i >= 0 {
			rep.Pending[i].Changed = true
		} else {
			changed = append(changed, p)
		}
	}
	if len(rep.Pending) > 0 {
		data, _ := json.Marshal(rep.Pending)
		if err := os.WriteFile(e.pendingFile(), data, 0o600); err != nil {
			return out, err
		}
		for _, p := range rep.Pending {
			e.printf("%s", pendingLine(p, e.Host))
		}
	}
	out.Note = plural(len(values), "secret")
	if deferred > 0 {
		e.printf("%d post-activation secrets follow the activation", deferred)
		out.Note += fmt.Sprintf(", %d after activation", deferred)
	}
	note, err := e.rotate(ctx, c, changed, &out)
	if note != "" {
		out.Note += ", " + note
	}
	return out, err
}

// pendingLine says what was written for a file whose user or group does
// not exist yet, and what it becomes after the activation.
func pendingLine(p secrets.Pending, h *config.Host) string {
	missing := "user " + p.Owner
	if p.Missing == "group" {
		missing = "group " + p.Group
	}
	mode := ""
	for _, f := range h.Secrets.Files {
		if f.Path == p.Path {
			mode = " " + f.Mode
		}
	}
	return fmt.Sprintf("%s: %s does not exist yet; written as %s (no access for its group or others), and written again as %s:%s%s after the activation",
		p.Path, missing, p.Wrote, p.Owner, p.Group, mode)
}

// postActivation deploys the post-activation secrets, and writes again the
// files that were written before their owner existed, now with their
// owner, after a successful activation. Their commands run again: values
// are never kept between steps. The files written are added to out.
func postActivation(ctx context.Context, e *Env, c *ssh.Client, out *Outcome) (string, error) {
	var pending []secrets.Pending
	if data, err := os.ReadFile(e.pendingFile()); err == nil {
		if err := json.Unmarshal(data, &pending); err != nil {
			return "", err
		}
	}
	var files []*config.Secret
	again := 0
	for i := range e.Host.Secrets.Files {
		f := &e.Host.Secrets.Files[i]
		switch {
		case f.UploadAt == config.PostActivation:
			files = append(files, f)
		case slices.ContainsFunc(pending, func(p secrets.Pending) bool { return p.Path == f.Path }):
			files = append(files, f)
			again++
		}
	}
	if len(files) == 0 {
		return "", nil
	}
	values, err := secrets.Fetch(ctx, e.Runner, files, e.Stdin, e.Stderr, e.Stages.Begin)
	if err != nil {
		return "", secretError(err)
	}
	if err := e.checkPlanned(values); err != nil {
		return "", fmt.Errorf("after the activation: %w", err)
	}
	rep, err := e.send(ctx, c, &secrets.Stream{Values: values})
	out.Secrets = append(out.Secrets, e.written(rep)...)
	if err != nil {
		return "", fmt.Errorf("after the activation: %w", err)
	}
	os.Remove(e.pendingFile())
	var parts []string
	if n := len(values) - again; n > 0 {
		parts = append(parts, plural(n, "secret")+" after activation")
	}
	if again > 0 {
		parts = append(parts, plural(again, "owner")+" set after activation")
	}
	// The files that were pending changed when they were first written.
	changed := rep.Changed
	for _, p := range pending {
		if p.Changed && !slices.Contains(changed, p.Path) {
			changed = append(changed, p.Path)
		}
	}
	note, err := e.rotate(ctx, c, changed, out)
	if note != "" {
		parts = append(parts, note)
	}
	if err != nil {
		return strings.Join(parts, ", "), fmt.Errorf("after the activation: %w", err)
	}
	return strings.Join(parts, ", "), nil
}

// send runs the receiver on the host with the stream on its stdin and
// reports what it did. Its errors say what is on the host: nothing of the
// session, some files, or every file (when only the manifest failed); the
// report it returns with them lists the files written, if any.
func (e *Env) send(ctx context.Context, c *ssh.Client, s *secrets.Stream) (*secrets.Report, error) {
	h := e.Host
	s.Manifest = manifestPath(h)
	s.RemoveStale = h.Secrets.RemoveStale
	for _, f := range h.Secrets.Files {
		s.Keep = append(s.Keep, f.Path)
	}
	argv, err := e.remote(c, secrets.ReceiverArgv()...)
	if err != nil {
		return nil, err
	}
	show, err := e.receiverShown(c, len(s.Values))
	if err != nil {
		return nil, err
	}
	var stdout bytes.Buffer
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	// The session is detached from the terminal's Ctrl-C: an interrupt
	// cancels ctx instead, Send then stops before the commit record, and
	// the receiver discards what it got.
	defer e.stage("secret session")()
	cmd, err := e.Runner.Start(ctx, execx.Cmd{Argv: argv, Show: show, Stdin: pr, Stdout: &stdout, Stderr: e.Stderr, Detach: true})
	pr.Close()
	if err != nil {
		pw.Close()
		return nil, err
	}
	sendErr := secrets.Send(ctx, pw, s)
	commitSent := sendErr == nil
	pw.Close()
	waitErr := execx.Wait(argv[0], cmd)
	rep, parseErr := secrets.ParseReport(stdout.Bytes())
	for _, l := range rep.Other {
		e.printf("%s", l) // the login shell's own output
	}
	if err := sessionError(h.Name, rep, ctx.Err(), waitErr, sendErr, commitSent); err != nil {
		if rep.Committed || len(rep.Wrote) > 0 {
			e.reportSecrets(rep)
		}
		return rep, err
	}
	if parseErr != nil {
		return nil, parseErr
	}
	e.reportSecrets(rep)
	return rep, nil
}

// sessionError says what a receiver session left on the host when it did
// not end well.
func sessionError(host string, rep *secrets.Report, ctxErr, waitErr, sendErr error, commitSent bool) error {
	written := func() string {
		return fmt.Sprintf("%s written (%s)", plural(len(rep.Wrote), "file"), strings.Join(rep.Wrote, ", "))
	}
	var xe *execx.Error
	dropped := errors.As(waitErr, &xe) && xe.ExitCode == 255 // ssh: the connection failed
	switch {
	case rep.Committed && ctxErr != nil:
		return fmt.Errorf("interrupted after the secrets were committed: every file of the session is written on %s", host)
	case rep.Committed && waitErr != nil:
		return &Hinted{Err: fmt.Errorf("the secrets are written on %s, but updating the list of deployed secrets failed: %w", host, waitErr),
			Advice: "every file of the session is in place; the host's message is above; the next run updates the list again"}
	case rep.Committed:
		return nil
	case len(rep.Wrote) > 0:
		return &Hinted{Err: fmt.Errorf("the secrets were only partly written on %s: %s; the others of the session were not", host, written()),
			Advice: "the host's message is above; deploy the secrets again once it is fixed"}
	case ctxErr != nil && !commitSent:
		return fmt.Errorf("interrupted before the secrets were committed; nothing was written on %s", host)
	case commitSent && dropped:
		return &Hinted{Err: fmt.Errorf("the connection to %s ended after the secrets were sent, before the host confirmed them: %w", host, waitErr),
			Advice: "the files may or may not be in place; deploy the secrets again"}
	case waitErr != nil:
		return &Hinted{Err: fmt.Errorf("writing the secrets on the host: %w", waitErr),
			Advice: "no file of this session was written; the host's messages are above"}
	case sendErr != nil:
		return fmt.Errorf("sending the secrets: %w; nothing was written on %s", sendErr, host)
	case ctxErr != nil:
		return fmt.Errorf("interrupted; the host did not confirm the secrets, nothing of the session was written on %s", host)
	}
	return nil
}

// receiverShown is the receiver's command line for --verbose and --dry,
// with the script's text replaced by its name.
func (e *Env) receiverShown(c *ssh.Client, files int) (string, error) {
	argv := secrets.ReceiverArgv()
	argv[2] = fmt.Sprintf("<lollypops secret receiver: %d files on stdin>", files)
	shown, err := e.remote(c, argv...)
	if err != nil {
		return "", err
	}
	return execx.Quote(shown), nil
}

func (e *Env) reportSecrets(rep *secrets.Report) {
	if n := len(rep.Wrote); n > 0 {
		const show = 5
		list := rep.Wrote
		more := ""
		if n > show {
			list, more = list[:show], fmt.Sprintf(" and %d more", n-show)
		}
		e.printf("wrote %d files: %s%s", n, strings.Join(list, ", "), more)
	}
	for _, p := range rep.Removed {
		e.printf("removed stale secret %s (no longer configured)", p)
	}
	for _, p := range rep.Stale {
		e.printf("stale secret %s: no longer configured; set lollypops.secrets.remove-stale = true to remove it", p)
	}
}

func secretError(err error) error {
	var ce *secrets.CommandError
	if errors.As(err, &ce) {
		hint := ce.Advice
		if hint == "" {
			hint = "nothing was written on the host; the command's own messages are above"
		} else {
			hint += "; nothing was written on the host"
		}
		return &Hinted{Err: err, Advice: hint}
	}
	return err
}

// plural is "1 secret", "2 secrets".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
