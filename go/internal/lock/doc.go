// Package lock keeps two runs of lollypops from deploying one host at the
// same time. A second run that reaches a host another run is deploying is
// refused on the host, with one line naming the holder and a hint:
//
//	lollypops: host1: being deployed by alice@laptop since 2026-12-02 03:40:12 UTC (pid 1234)
//	lollypops: hint: wait for that run to end and deploy again; ...
//
// # Scope
//
// The built-in steps that change the host — deploy-flake, deploy-secrets
// and rebuild — take the lock when they open the host's shared connection
// (steps.Env.connect), before they change anything. The lock belongs to the
// run, not to the step: the steps of one run (each its own lollypops-step
// process, possibly in parallel) share it, identified by the run id (the
// deployer's host name and the run directory), and it is held from the
// first such step until the host's last step of the run has ended (the
// keeper's ReleaseHost: each step says whose lock its holder session
// holds), so another run cannot slip in between deploy-flake and rebuild.
// A host's extra tasks that run after a built-in step of the same run are
// therefore covered too.
//
// check-vars takes no lock: it runs before any host is touched and only
// looks at this machine. Extra tasks alone take no lock either: they are
// the user's shell commands, lollypops cannot tell whether they change the
// host, and read-only ones (logs, status) must keep working while a deploy
// runs. A refused host fails; the run's other hosts go on.
//
// # On the host
//
// The lock is an flock(1) (util-linux) on <dir>/lock, held by a POSIX sh
// script (holderScript) that runs over the run's shared ssh connection, as
// the user the host's steps act as (through sudo when the host enables it,
// ssh.Command with the host's sudo settings). <dir> is RootDir
// (/run/lollypops, a tmpfs: a reboot frees it) when that user is root, and
// ~/.lollypops-lock when it is not (no sudo, a non-root ssh user: such a
// run can only change what that user can, so its lock is the user's).
//
// The host is a multi-user machine, so the script creates <dir> with
// mkdir -m 0700 (atomic: it exists or it is made) and then checks, before
// opening anything in it, that <dir> and its parent are directories, not
// symlinks, owned by the acting user (the parent may also be root's) and
// writable by no one else; otherwise it refuses, naming the path. No other
// user can then create, replace or open the files in <dir>: nobody else
// can pre-create the lock, point it elsewhere, or hold it to block deploys.
//
// Next to the lock, <dir>/holder is the holder's record: run id, local user,
// deployer host, pid of its lollypops process, and since when (UTC, the
// host's clock). A second lock, <dir>/guard, is held briefly around taking
// the lock and writing the record, and around reading it: a contender never
// reads a half-written record or a dead holder's.
//
// # Lifetime: a dead run does not block
//
// The holder reads its stdin until it ends. That stdin is a connection to
// the run's Keeper, a unix socket served by the lollypops process itself
// (in the run directory). So the lock is released
//
//   - at the end of the run: Keeper.Release closes the connections, every
//     holder removes its record and exits, and Release waits until each is
//     gone; deploy.go calls it before it closes the ssh connections, also
//     after an interrupt;
//   - when the run dies, even by SIGKILL: the kernel closes the keeper's
//     side, the holder reads end of file and exits at once;
//   - when the connection is cut: sshd ends the session and the holder's
//     stdin ends;
//   - when the connection hangs without closing (the bound): the keeper
//     sends a heartbeat byte every Heartbeat (15 s); a holder that hears
//     nothing for TTL (90 s) gives the lock up.
//
// A run that is alive but cannot send (stopped with Ctrl-Z, for instance)
// loses the lock after TTL; its later steps then take it again, or are
// refused if another run took it.
//
// The step binary talks to the host through the same master as the steps:
// one extra session per step (a few milliseconds), no extra
// authentication. The holder's ssh client runs in its own session, out of
// reach of the terminal's Ctrl-C, and writes its messages to the host's
// file in the run directory (<prefix>.lock.log), not to go-task's pipes.
package lock
