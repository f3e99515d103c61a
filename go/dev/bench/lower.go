package main

import _ "embed"

// lowerBound is the benchmark's lower bound: a hand-written script that
// does a deploy's work — copy the flake, link it, write the secrets with
// their modes, call the rebuild — with one SSH connection per host, hosts
// in parallel, and nothing else: no checks, no atomic writes, no exact
// bytes, no summary. It is as lean as a script gets: per secret, one
// process here (the secret's command) and one on the host.
//
//	bash lower.sh SSH_CONFIG FLAKE SECRETS_LIST MODE HOST...
//
// SECRETS_LIST has one line per secret: path, mode, owner, group and the
// command that prints the value, separated by tabs. MODE is how the new
// system is activated:
//
//   - plain: the host's nixos-rebuild switch (lollypops with the rollback
//     off does the same);
//   - guarded: the guarded activation's steps by hand, and nothing more:
//     build the system on the host (nix build), start a detached guard
//     (systemd-run) that runs switch-to-configuration test and waits for a
//     confirmation, wait for the activation's end, close the connection and
//     open a new one (proving the host reachable), confirm, and wait for the
//     guard to set the profile and the boot loader (switch-to-configuration
//     boot). No lock, no health check, no watching of the output: the
//     host's side polls files every 100 ms, as lollypops' guard does.
//
//go:embed lower.sh
var lowerBound string
