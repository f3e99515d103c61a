package ssh

import (
	"encoding/json"
	"slices"
	"strings"

	"mvdan.cc/sh/v3/syntax"

	"github.com/lollypops/lollypops/go/internal/config"
)

// BuildHost returns the client of h's build host
// (lollypops.deployment.build-host), or nil when it has none. prefix gives
// the run directory's file prefix of a connection (rundir.Dir.SSH). Hosts
// whose build host settings are the same get the same prefix: one shared
// connection, one authentication, per build host and run.
func BuildHost(h *config.Host, prefix func(string) string) *Client {
	b := h.Deployment.BuildHost
	if b == nil {
		return nil
	}
	s := b.SSH(h.Deployment.SSH.Command)
	key, _ := json.Marshal(s) // plain strings: cannot fail
	return &Client{
		Host:   &config.Host{Name: b.Host, Deployment: config.Deployment{SSH: s}},
		Prefix: prefix("build-host\n" + string(key)),
	}
}

// Relay names a store for nix copy between two hosts (--from one, --to the
// other): nix runs "ssh" with the URL's host for both, with the same
// NIX_SSHOPTS, so RelayScript's wrapper tells them apart by Alias.
type Relay struct {
	Alias  string // the host of the store URL nix is given: ssh://<Alias>
	Client *Client
}

// StoreURL is the store URL nix copy is given for the relay's host.
func (r Relay) StoreURL() string { return "ssh://" + r.Alias }

// RelayScript is an ssh wrapper for a nix copy between hosts: it replaces
// the destination, one of the relays' aliases, with that host's address,
// and reaches it over its own shared connection with its own options (as
// WrapperScript does for one host). Any other destination is refused.
func RelayScript(sshPath string, relays ...Relay) (string, error) {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n# Written by lollypops for one run: ssh to the hosts of a nix copy between two of them,\n# each through its own shared connection.\n")
	b.WriteString(wrapperGuard)
	b.WriteString(relayFind)
	var real, run strings.Builder
	for _, r := range relays {
		argv := r.Client.WrapperArgs(sshPath)
		if u := r.Client.Host.Deployment.SSH.User; u != nil {
			argv = append(argv, "-l", *u)
		}
		words, err := quoteAll(r.Alias, r.Client.Host.Deployment.SSH.Host)
		if err != nil {
			return "", err
		}
		cmd, err := quoteAll(argv...)
		if err != nil {
			return "", err
		}
		real.WriteString(words[0] + ") real=" + words[1] + " ;;\n")
		run.WriteString(words[0] + ") exec " + strings.Join(cmd, " ") + " \"$@\" ;;\n")
	}
	b.WriteString("case $dest in\n" + real.String() + "*) echo \"lollypops: ssh relay: no host $dest in this copy\" >&2; exit 255 ;;\nesac\n")
	b.WriteString(relaySwap)
	b.WriteString("case $dest in\n" + run.String() + "esac\n")
	return b.String(), nil
}

// relayFind finds the destination among ssh's arguments: the first word
// that is no option nor an option's argument.
const relayFind = `skip=0 end=0 n=0 at=0 dest=
for a do
	n=$((n + 1))
	if [ "$skip" = 1 ]; then skip=0; continue; fi
	if [ "$end" = 1 ]; then dest=$a at=$n; break; fi
	case $a in
	-[BbcDEeFIiJLlmOopQRSWw]) skip=1 ;;
	--) end=1 ;;
	-*) ;;
	*) dest=$a at=$n; break ;;
	esac
done
`

// relaySwap puts real in the destination's place.
const relaySwap = `i=0
for a do
	i=$((i + 1))
	shift
	if [ "$i" = "$at" ]; then set -- "$@" "$real"; else set -- "$@" "$a"; fi
done
`

func quoteAll(words ...string) ([]string, error) {
	q := slices.Clone(words)
	for i, w := range words {
		s, err := syntax.Quote(w, syntax.LangPOSIX)
		if err != nil {
			return nil, err
		}
		q[i] = s
	}
	return q, nil
}
