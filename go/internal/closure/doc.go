// Package closure diffs two NixOS system closures before activation: the
// packages added, removed and changed in version, how many were rebuilt,
// the closure size before and after, and whether the kernel or the initrd
// changes. It is the core of the diff task (issue 10, point 1); it never
// activates anything and never touches the network or the disk itself.
//
// # Names and versions
//
// ParseName splits a store path name the way `nix store diff-closures`
// does: an output suffix ("-man", "-dev", "-lib", "-bin", "-doc",
// "-modules", any "-[a-z]+", "-lib32", "-lib64") is stripped first, then
// the rest is split with builtins.parseDrvName's rule (the version starts
// after the first '-' that is followed by a character that is not a
// letter). Compare groups store paths by name, then by version, as
// diff-closures does: a name may have several versions on a side, and
// Changed lists only the versions that differ. Same name and version but
// other store paths (another build, an output more or less) is "rebuilt".
//
// # Inputs, and the commands that produce them
//
// Per system, Compare needs a System: the toplevel, the resolved targets
// of its kernel and initrd links, and its closure as (store path, NAR
// size) pairs. On the target:
//
//	readlink -f /run/current-system                       the running toplevel (resolve once)
//	readlink -f <toplevel>/kernel                         e.g. /nix/store/…-linux-6.6.30/bzImage
//	readlink -f <toplevel>/initrd                         e.g. /nix/store/…-initrd-linux-6.6.30/initrd
//	nix --extra-experimental-features nix-command \
//	    path-info [--json-format 1] --json --recursive <toplevel>
//
// DecodePathInfo reads each shape of that JSON (Nix 2.8's array, the
// object keyed by path of Nix 2.19 and later, --json-format 2). Script
// runs all of it for the new toplevel and the current system in one
// session (ScriptArgs gives its argv, to be quoted by ssh.Command), and
// ParseOutput reads its output into a Collected; the new toplevel must be
// in the target's store already (after the copy, before activation). The
// same script runs on the deployer for a system built there.
//
// A use, with the lead's runner and ssh client:
//
//	argv, err := closure.ScriptArgs(toplevel, "")
//	cmd, err := ssh.Command(nil, argv...)   // one remote command line
//	out := <stdout of ssh … cmd>
//	c, err := closure.ParseOutput(out)
//	d, err := closure.Compare(c.Current, c.New)
//	d.WriteText(os.Stdout)                    // or d.WriteJSON for --json
//
// # Output
//
// WriteText writes the human form (see its doc); WriteJSON the stable
// JSON form of Diff, whose "version" is FormatVersion. docs/closure-diff.md
// shows both.
package closure
