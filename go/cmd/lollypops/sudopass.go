package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/lollypops/lollypops/go/internal/config"
	"github.com/lollypops/lollypops/go/internal/rundir"
	"github.com/lollypops/lollypops/go/internal/ssh"
	"github.com/lollypops/lollypops/go/internal/sudopw"
)

// sudoPassword is how a run gets the password of a sudo that asks for one:
// on the terminal, once, or from a password command.
type sudoPassword struct {
	Ask     bool
	Command string
}

func (s *sudoPassword) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&s.Ask, "ask-sudo-password", false, "Ask once, on the terminal, for the password of sudo on the hosts that use it (lollypops.deployment.sudo.enable); it goes only to a host whose sudo asks for it, once per connection, never in an argument, the environment or a file.")
	fs.StringVar(&s.Command, "sudo-password-command", "", "Take the sudo password from the first line this command prints (e.g. 'pass hosts/sudo'), instead of asking.")
}

// serve gets the password and serves it to the run's steps; the returned
// function stops serving. It does nothing when no password is asked for.
func (s *sudoPassword) serve(ctx context.Context, run *rundir.Dir, inv *config.Inventory, hosts map[string][]string, stderr io.Writer) (func(), error) {
	if !s.Ask && s.Command == "" {
		return func() {}, nil
	}
	if s.Ask && s.Command != "" {
		return nil, &usageError{msg: "--ask-sudo-password and --sudo-password-command cannot be used together"}
	}
	n := 0
	for h := range hosts {
		if inv.Hosts[h].Deployment.Sudo.Enable {
			n++
		}
	}
	if n == 0 {
		return nil, &usageError{msg: "a sudo password was asked for, but no host of this run uses sudo",
			hint: "set lollypops.deployment.sudo.enable = true, or pass --sudo for this run"}
	}
	var pw []byte
	var err error
	if s.Ask {
		pw, err = sudopw.Ask(fmt.Sprintf("lollypops: sudo password for %d hosts: ", n))
	} else {
		pw, err = sudopw.Command(ctx, s.Command, stderr)
	}
	if err != nil {
		return nil, &usageError{msg: err.Error(), hint: "--ask-sudo-password needs a terminal; --sudo-password-command takes the password from a command"}
	}
	// The password stays here: the steps ask for the hosts' root
	// sessions, which get it only when their sudo asks (package sudopw).
	srv, err := sudopw.Serve(run.Path, pw, func(name string) (*ssh.Client, error) {
		h := inv.Hosts[name]
		if _, in := hosts[name]; h == nil || !in {
			return nil, fmt.Errorf("host %q is not in this run", name)
		}
		if !h.Deployment.Sudo.Enable {
			return nil, fmt.Errorf("%s does not use sudo (lollypops.deployment.sudo.enable)", name)
		}
		return &ssh.Client{Host: h, Prefix: run.SSH(name)}, nil
	})
	if err != nil {
		return nil, err
	}
	return srv.Close, nil
}
