// Package flakelink is the deployed flake's link on a host,
// <config-dir>/flake: the script that makes it (deploy-flake) and the
// fragment that resolves it for the scripts that build from it. Both are
// POSIX sh, linted (make lint) and tested under bash, dash, busybox sh and
// mksh.
package flakelink

import _ "embed"

// Path is the link, in the host's configuration directory.
func Path(configDir string) string { return configDir + "/flake" }

// linkScript is link.sh, described in the file.
//
//go:embed link.sh
var linkScript string

// LinkArgv points Path(configDir) at flake, a store path already on the
// host, as a GC root.
func LinkArgv(configDir, flake string) []string {
	return []string{"sh", "-c", linkScript, "lollypops-link", configDir, flake}
}

// resolve is resolve.sh: it defines the function flake_ref, described in
// the file.
//
//go:embed resolve.sh
var resolve string

// WithResolve returns script with resolve.sh in front of it, so that it
// can call flake_ref.
func WithResolve(script string) string { return resolve + script }
