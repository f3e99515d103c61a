package main

import (
	"context"

	"github.com/spf13/pflag"

	"github.com/lollypops/lollypops/go/internal/output"
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

// get asks for the password, or runs the password command, before any
// host starts (nil: no password was asked for). Package deploy serves it
// to the hosts whose sudo asks for one (package sudopw); a host that does
// not use sudo never gets it.
func (s *sudoPassword) get(ctx context.Context, out *output.Sink) ([]byte, error) {
	if !s.Ask && s.Command == "" {
		return nil, nil
	}
	if s.Ask && s.Command != "" {
		return nil, usage("--ask-sudo-password and --sudo-password-command cannot be used together", "")
	}
	var pw []byte
	var err error
	if s.Ask {
		pw, err = sudopw.Ask(output.Prefix + "sudo password: ")
	} else {
		pw, err = sudopw.Command(ctx, s.Command, out.Foreign())
	}
	if err != nil {
		return nil, usage(err.Error(), "--ask-sudo-password needs a terminal; --sudo-password-command takes the password from a command")
	}
	if pw == nil {
		pw = []byte{}
	}
	return pw, nil
}
