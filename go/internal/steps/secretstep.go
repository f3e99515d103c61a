package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/execx"
	"github.com/lollypops/lollypops/go/internal/secrets"
	"github.com/lollypops/lollypops/go/internal/ssh"
)

// manifestPath is where the host keeps the list of secret files lollypops
// wrote, to find the ones no longer configured.
func manifestPath(h *config.Host) string {
	return path.Join(h.Deployment.ConfigDir, "secrets.manifest")
}

// pendingFile keeps, between deploy-secrets and rebuild, the secrets that
// were written before their owner existed.
func (e *Env) pendingFile() string { return e.Run.SSH(e.Host.Name) + ".pending.json" }

// DeploySecrets runs every secret command of the host here and writes the
// values on the host in one ssh session. When the activation follows in
// this run, post-activation secrets wait for it (see Rebuild).
func DeploySecrets(ctx context.Context, e *Env) (Note, error) {
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
	values, err := secrets.Fetch(ctx, e.Runner, files, e.Stdin, e.Stderr)
	if err != nil {
		return "", secretError(err)
	}
	c, err := e.connect(ctx)
	if err != nil {
		return "", err
	}
	rep, err := e.send(ctx, c, &secrets.Stream{Values: values, Soft: e.ActivationFollows})
	if err != nil {
		return "", err
	}
	if len(rep.Pending) > 0 {
		data, _ := json.Marshal(rep.Pending)
		if err := os.WriteFile(e.pendingFile(), data, 0o600); err != nil {
			return "", err
		}
		for _, p := range rep.Pending {
			e.printf("%s: %s:%s does not exist yet; written owned by root, the owner is set after activation", p.Path, p.Owner, p.Group)
		}
	}
	note := fmt.Sprintf("%d secrets", len(values))
	if len(values) == 1 {
		note = "1 secret"
	}
	if deferred > 0 {
		e.printf("%d post-activation secrets follow the activation", deferred)
		note += fmt.Sprintf(", %d after activation", deferred)
	}
	return Note(note), nil
}

// postActivation deploys the post-activation secrets and gives pending
// files their owner, after a successful activation.
func postActivation(ctx context.Context, e *Env, c *ssh.Client) (string, error) {
	var files []*config.Secret
	for i := range e.Host.Secrets.Files {
		if f := &e.Host.Secrets.Files[i]; f.UploadAt == config.PostActivation {
			files = append(files, f)
		}
	}
	var pending []secrets.Pending
	if data, err := os.ReadFile(e.pendingFile()); err == nil {
		if err := json.Unmarshal(data, &pending); err != nil {
			return "", err
		}
	}
	if len(files) == 0 && len(pending) == 0 {
		return "", nil
	}
	values, err := secrets.Fetch(ctx, e.Runner, files, e.Stdin, e.Stderr)
	if err != nil {
		return "", secretError(err)
	}
	if _, err := e.send(ctx, c, &secrets.Stream{Values: values, Chown: pending}); err != nil {
		return "", err
	}
	os.Remove(e.pendingFile())
	return fmt.Sprintf("%d secrets after activation", len(values)), nil
}

// send runs the receiver on the host with the stream on its stdin and
// reports what it did.
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
	cmd, err := e.Runner.Start(ctx, execx.Cmd{Argv: argv, Show: show, Stdin: pr, Stdout: &stdout, Stderr: e.Stderr, Detach: true})
	pr.Close()
	if err != nil {
		pw.Close()
		return nil, err
	}
	sendErr := secrets.Send(ctx, pw, s)
	pw.Close()
	waitErr := execx.Wait(argv[0], cmd)
	rep, parseErr := secrets.ParseReport(stdout.Bytes())
	switch {
	case ctx.Err() != nil:
		return nil, fmt.Errorf("interrupted before the secrets were committed; nothing was written on %s", h.Name)
	case waitErr != nil:
		return nil, &Hinted{Err: fmt.Errorf("writing the secrets on the host: %w", waitErr),
			Hint: "no file of this session was written; the host's messages are above"}
	case sendErr != nil:
		return nil, fmt.Errorf("sending the secrets: %w", sendErr)
	case parseErr != nil:
		return nil, parseErr
	}
	e.reportSecrets(rep)
	return rep, nil
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
	for _, p := range rep.OwnerFixed {
		e.printf("%s: owner set after activation", p)
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
		hint := ce.Hint
		if hint == "" {
			hint = "nothing was written on the host; the command's own messages are above"
		} else {
			hint += "; nothing was written on the host"
		}
		return &Hinted{Err: err, Hint: hint}
	}
	return err
}
