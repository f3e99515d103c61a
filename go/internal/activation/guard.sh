#!/bin/sh
# The activation guard (package activation, docs/activation.md). It runs on
# the host as root, as a transient systemd service (systemd-run), detached
# from every ssh session: a dropped connection, a stopped sshd or a dead
# deployer cannot stop it halfway. POSIX sh; tested under bash (NixOS's
# /bin/sh), dash, busybox sh and mksh.
#
#   guard.sh run DIR NEW ACTION WINDOW PROFILE SPECIALISATION
#   guard.sh recover DIR
#
# run activates NEW (a toplevel) for ACTION. With WINDOW > 0 (switch or
# test, guarded) it runs `switch-to-configuration test` first, then waits
# up to WINDOW seconds, counted on the monotonic clock from the end of the
# activation, for DIR/confirm (the deployer's health checks passed) or
# DIR/abort; DIR/reached (the deployer has a new connection to the host)
# starts the window again, once. A switch then sets PROFILE and installs
# the boot loader (`switch-to-configuration boot`). Without confirmation, or on abort, it
# returns to the systems that ran and booted before. The boot loader is
# only touched once the new system is confirmed: a host that crashes or
# reboots while the guard waits boots the system it booted before. With
# WINDOW = 0 it activates as nixos-rebuild does (profile first for switch
# and boot, then switch-to-configuration ACTION) and reports the exit code.
# SPECIALISATION is "", a name (activate NEW/specialisation/NAME), or
# ":keep" (the one the host runs now, when NEW has it).
#
# recover finishes an activation whose guard stopped before a final state
# (killed, out of memory): a confirmed one is completed (also when the
# deployer's confirmation came after the guard stopped), any other is
# rolled back.
#
# DIR/status is one line, replaced atomically when the state changes:
#
#   starting                    written by the deployer before the guard starts
#   activating [what]           switch-to-configuration runs (or waits for its lock)
#   activated                   waiting for the deployer's confirmation
#   confirming                  confirmed: setting the profile, installing the boot loader
#   rolling-back REASON
# and one of the final states:
#   confirmed                   the new system stays
#   rolled-back REASON          the previous systems run and boot again
#   rollback-failed REASON      the host needs a person
#   refused REASON              nothing was activated (the pre-switch checks, a busy lock, ...)
#   needs-reboot REASON         nothing was activated: the new init takes effect after a reboot
#   superseded REASON           someone else switched the host meanwhile; left as it is
#   done CODE                   unguarded: switch-to-configuration's exit code
#
# DIR/result holds "KEY VALUE" lines (what ran and when, on the monotonic
# clock), DIR/log everything the activations printed. Once final, the
# guard removes its GC roots (DIR/new, DIR/prev, DIR/prev-2): what
# stays is the profile's and /run/current-system's.
#
# Waiting costs no polling. DIR/wake.* are FIFOs, each read by one
# process: DIR/wake.guard by the guard while it waits for the deployer's
# word, DIR/wake.PID by a watch (watch.sh). A status change (say) and a
# word of the deployer (signal.sh) write a line to each of them; a ticker
# (one sleep a second) wakes the guard for its deadline. The files stay the
# truth: a wakeup only says "look again". Each write opens the FIFO
# read-write, so it never waits for a reader.
#
# Test seams (environment): LOLLYPOPS_CURRENT (/run/current-system),
# LOLLYPOPS_STC_LOCK (switch-to-configuration's lock file),
# LOLLYPOPS_STC_LOCK_WAIT (seconds to wait for it, 300), LOLLYPOPS_TICK
# (seconds between the ticker's wakeups, 1).
set -u
umask 077
current=${LOLLYPOPS_CURRENT:-/run/current-system}
stclock=${LOLLYPOPS_STC_LOCK:-/run/nixos/switch-to-configuration.lock}
lockwait=${LOLLYPOPS_STC_LOCK_WAIT:-300}
every=${LOLLYPOPS_TICK:-1}
mode=$1 dir=$2
exec >>"$dir/log" 2>&1 </dev/null

# say STATUS replaces DIR/status and wakes the watches.
say() {
	printf '%s\n' "$*" >"$dir/status.tmp" && mv -f "$dir/status.tmp" "$dir/status"
	for _f in "$dir"/wake.*; do
		[ "$_f" = "$dir/wake.guard" ] || [ ! -p "$_f" ] || echo s 1<>"$_f"
		# A watch that ended meanwhile removed its FIFO: the write made a
		# regular file of that name.
		[ -p "$_f" ] || [ ! -e "$_f" ] || rm -f "$_f"
	done
}
# listen makes DIR/wake.guard and opens it on descriptor 3: from then on,
# `read -r word <&3` waits for a word of the deployer ("w"), the lock's
# holder ("held") or, once tick started the ticker, a tick ("t"). The
# ticker ends with the guard, or when quiet stops it: the guard no longer
# reads.
fifo='' ticker=''
listen() {
	fifo=$dir/wake.guard
	rm -f "$fifo"
	mkfifo -m 0600 "$fifo" || return 1
	exec 3<>"$fifo"
}
tick() {
	(
		exec 1>&3 2>/dev/null </dev/null
		while kill -0 $$ 2>/dev/null; do
			sleep "$every"
			echo t
		done
	) &
	ticker=$!
}
quiet() {
	[ -n "$ticker" ] || return 0
	kill "$ticker" 2>/dev/null
	ticker=
}
# note KEY VALUE [KEY VALUE...] sets lines of DIR/result (values on one
# line), replacing the file at once. The host may start processes slowly
# (a loaded machine): the guard notes what it can together, and reads
# DIR/result with the shell's own read.
note() {
	_keep=" "
	_add=
	while [ $# -ge 2 ]; do
		_keep="$_keep$1 "
		_add="$_add$1 $2
"
		shift 2
	done
	{
		if [ -e "$dir/result" ]; then
			while IFS= read -r _l; do
				case $_keep in *" ${_l%% *} "*) ;; *) printf '%s\n' "$_l" ;; esac
			done <"$dir/result"
		fi
		printf '%s' "$_add"
	} >"$dir/result.tmp" && mv -f "$dir/result.tmp" "$dir/result"
}
# get KEY sets got to the value of KEY in DIR/result ("" when it has
# none), without a subshell: the host may start processes slowly.
got=
get() {
	got=
	[ -e "$dir/result" ] || return 0
	while IFS= read -r _l; do
		case $_l in "$1 "*)
			got=${_l#"$1 "}
			return 0
			;;
		esac
	done <"$dir/result"
}
# The monotonic clock (since boot): a clock step (timesyncd starting in the
# new system) moves neither a deadline nor a duration. cs sets now to it in
# centiseconds (/proc/uptime has two decimals).
up='' now=''
clock() {
	read -r up _ </proc/uptime
}
cs() {
	clock
	now=$((${up%%.*} * 100 + 1${up#*.} - 100))
}
# resolved PATH sets res to where PATH leads, every link followed (as
# readlink -e does), or to "" when it leads nowhere. What it resolves is a
# system, a directory: cd -P finds it without a process.
res=''
resolved() {
	res=
	if cd -P "$1" 2>/dev/null; then
		res=$PWD
		cd /
	fi
}
# final STATE...: the end. The GC roots go; the status says how it ended.
final() {
	release_lock
	quiet
	rm -f "$dir/new" "$dir/prev" "$dir/prev-2" "$dir/wake.guard"
	say "$@"
	exit 0
}
# pin PATH...: the paths stay in the store while the guard needs them, in
# one nix-store call: DIR/prev, DIR/prev-2 (nix-store names a call's roots
# so). Empty paths are left out.
pin() {
	_paths=
	for _p do
		[ -z "$_p" ] || _paths=1
	done
	[ -n "$_paths" ] || return 0
	_first=1
	for _p do
		if [ -n "$_first" ]; then
			set --
			_first=
		fi
		[ -z "$_p" ] || set -- "$@" "$_p"
	done
	nix-store --realise --add-root "$dir/prev" --indirect -- "$@" >/dev/null ||
		echo "lollypops: cannot register a GC root for $*"
}
# failed_units prints the units in the failed state, one line.
failed_units() {
	systemctl list-units --state=failed --no-legend --plain 2>/dev/null |
		while read -r u _; do printf '%s ' "$u"; done
}
profile_set() {
	(umask 022 && exec nix-env -p "$profile" --set "$1")
}

# wait_lock SECONDS: until no other switch-to-configuration holds its lock
# (stc-ng fails at once when it is held; the Perl one waited).
wait_lock() {
	[ -e "$stclock" ] || return 0
	command -v flock >/dev/null 2>&1 || return 0
	flock -n "$stclock" true 2>/dev/null && return 0
	[ "$phase" != activate ] || say "activating waiting for another switch-to-configuration to finish"
	echo "lollypops: another switch-to-configuration holds its lock; waiting up to ${1}s"
	flock -w "$1" "$stclock" true
}
# stc TOPLEVEL ACTION runs TOPLEVEL's switch-to-configuration (umask 022,
# as under systemd); sets rc, and started/ended on the monotonic clock.
# The status says so while the new system is activated (phase activate),
# not while it is confirmed or rolled back.
rc=0 started='' ended='' phase=activate
stc() {
	cs
	until=$((now + lockwait * 100))
	while :; do
		cs
		left=$(((until - now) / 100))
		[ "$left" -gt 0 ] || left=1
		if ! wait_lock "$left"; then
			echo "lollypops: another switch-to-configuration held its lock for ${lockwait}s"
			rc=11
			return
		fi
		[ "$phase" != activate ] || say "activating switch-to-configuration $2"
		echo "lollypops: switch-to-configuration $2 of $1"
		clock
		started=$up
		(umask 022 && exec "$1/bin/switch-to-configuration" "$2")
		rc=$?
		clock
		ended=$up
		echo "lollypops: switch-to-configuration $2 exited $rc"
		# stc-ng: "Could not acquire lock", exit EWOULDBLOCK (11), in what
		# this run printed: the log from its first line on.
		cs
		# shellcheck disable=SC2016 # sed's $, not the shell's
		if [ "$rc" = 11 ] && [ "$now" -lt "$until" ] &&
			sed -n '/^lollypops: switch-to-configuration [a-z-]* of /h; //!H; ${x;p;}' "$dir/log" |
			grep -q '^Could not acquire lock'; then
			sleep 1
			continue
		fi
		return
	done
}

# While the guard waits for the deployer, it holds switch-to-configuration's
# lock: another switch (nixos-rebuild, system.autoUpgrade) waits or fails
# instead of being reverted by a rollback. A process of its own holds it,
# on its standard input (mksh closes other descriptors on exec), and dies
# with the guard's unit whatever ends the guard; it is released before
# every run of switch-to-configuration, which takes the lock itself.
holder=
hold_lock() {
	command -v flock >/dev/null 2>&1 || return 0
	[ -d "${stclock%/*}" ] || mkdir -m 0755 "${stclock%/*}" 2>/dev/null
	: >>"$stclock" 2>/dev/null || return 0
	# It says "held" on the guard's FIFO once it holds the lock, "none"
	# when it cannot; the guard waits for either, or two ticks at most (a
	# holder killed before it said a word).
	(
		if flock -w 10 0; then
			echo held >&3
			exec sleep 2147483647
		fi
		echo none >&3
	) <"$stclock" &
	holder=$!
	i=0
	while [ $i -lt 2 ] && IFS= read -r _w <&3; do
		case $_w in
		held) break ;;
		none)
			echo "lollypops: another process holds switch-to-configuration's lock; waiting for the confirmation without it"
			holder=
			break
			;;
		t)
			kill -0 "$holder" 2>/dev/null || break
			i=$((i + 1))
			;;
		esac
	done
}
release_lock() {
	[ -n "$holder" ] || return 0
	kill "$holder" 2>/dev/null
	wait "$holder" 2>/dev/null
	holder=
}

restore_profile() {
	get prev_gen
	prevGen=$got
	get prev_boot
	prevBoot=$got
	g=${prevGen%-link}
	g=${g##*-}
	resolved "${profile%/*}/$prevGen"
	if [ -n "$prevGen" ] && [ "$res" = "$prevBoot" ]; then
		(umask 022 && exec nix-env -p "$profile" --switch-generation "$g")
	elif [ -n "$prevBoot" ]; then
		# The generation is gone (a garbage collection): by path.
		profile_set "$prevBoot"
	fi
}

# rollback REASON: back to the systems that booted and ran before.
rollback() {
	why=$1 phase=rollback
	say "rolling-back $why"
	echo "lollypops: rolling back: $why"
	get prev_run
	prevRun=$got
	get prev_boot
	prevBoot=$got
	get target
	target=$got
	resolved "$current"
	cur=$res
	if [ -n "$cur" ] && [ "$cur" != "$target" ] && [ "$cur" != "$prevRun" ]; then
		final "superseded $why; meanwhile the host was switched to $cur by someone else, which stays"
	fi
	ok=1
	get profile_set
	if [ -n "$got" ]; then
		restore_profile || ok=
		if [ -n "$prevBoot" ]; then
			stc "$prevBoot" boot
			[ "$rc" = 0 ] || ok=
		fi
	fi
	if [ -n "$prevRun" ] && [ "$cur" != "$prevRun" ]; then
		stc "$prevRun" test
		note rollback_rc "$rc"
		case $rc in
		0) ;;
		# Failed units: the previous system runs, degraded.
		4) ;;
		*) ok= ;;
		esac
	fi
	if [ -n "$ok" ]; then
		final "rolled-back $why"
	fi
	final "rollback-failed $why"
}

# confirm: the deployer confirmed. A switch now becomes the boot default.
confirm() {
	release_lock
	get action
	if [ "$got" != switch ]; then
		final confirmed
	fi
	say confirming
	phase=confirm
	get target
	target=$got
	resolved "$current"
	cur=$res
	if [ "$cur" != "$target" ]; then
		final "superseded meanwhile the host was switched to $cur by someone else; the boot loader was left as it was"
	fi
	get new
	profile_set "$got" || rollback "setting the system profile failed"
	note profile_set 1
	stc "$target" boot
	note boot_rc "$rc"
	[ "$rc" = 0 ] || rollback "installing the boot loader failed (switch-to-configuration boot exited $rc)"
	final confirmed
}

# wait_confirmation: until the deployer confirms or aborts, or the window
# ends.
wait_confirmation() {
	get window
	window=$got
	tick
	hold_lock
	cs
	deadline=$((now + window * 100))
	note deadline "$deadline"
	say activated
	reached=
	while :; do
		if [ -e "$dir/confirm" ]; then
			quiet
			confirm
		fi
		# The deployer reached the host over a new connection: the window
		# starts again from now, once. What it is for (a host no one can
		# reach comes back by itself) is settled; a deployer slow to
		# reconnect (many hosts at once, a busy laptop) costs no healthy
		# host its deploy.
		if [ -z "$reached" ] && [ -e "$dir/reached" ]; then
			reached=1
			cs
			deadline=$((now + window * 100))
			note deadline "$deadline" reached "$deadline"
		fi
		if [ -e "$dir/abort" ]; then
			quiet
			release_lock
			rollback "$(head -n 1 "$dir/abort")"
		fi
		clock
		if [ $((${up%%.*} * 100 + 1${up#*.} - 100)) -ge "$deadline" ]; then
			quiet
			release_lock
			rollback "no confirmation from the deployer within ${window}s"
		fi
		# Until the deployer's word (signal.sh) or the next tick: the
		# word is seen at once, the deadline within a tick.
		IFS= read -r _w <&3
	done
}

# specialisation NEW SPEC sets target to the toplevel to activate and
# specName to the specialisation's name ("" for none); it returns 1 when
# NEW has no specialisation SPEC.
specialisation() {
	target=$1 specName=
	case $2 in
	"") ;;
	:keep)
		for s in "$prevBoot"/specialisation/*; do
			[ -e "$s" ] || continue
			resolved "$s"
			if [ "$res" = "$prevRun" ] && [ -e "$1/specialisation/${s##*/}" ]; then
				target=$1/specialisation/${s##*/} specName=${s##*/}
			fi
		done
		;;
	*)
		[ -e "$1/specialisation/$2" ] || return 1
		target=$1/specialisation/$2 specName=$2
		;;
	esac
}

run() {
	new=$1 action=$2 window=$3 profile=$4 spec=$5
	resolved "$current"
	prevRun=$res
	resolved "$profile"
	prevBoot=$res
	prevGen=$(readlink "$profile") || prevGen=
	# The previous systems stay in the store until the guard is done,
	# whatever a garbage collection does meanwhile.
	pin "$prevRun" "$prevBoot" &
	pinning=$!
	failedBefore=$(failed_units)
	wait "$pinning"
	target=$new specName=
	case $action in
	switch | test) specialisation "$new" "$spec" ||
		final "refused the new system has no specialisation \"$spec\"" ;;
	esac
	resolved "$target"
	[ -n "$res" ] || final "refused $target does not exist"
	target=$res
	# What recover needs, in one note: until it is written, nothing was
	# activated (the status is still the deployer's "starting").
	set -- new "$new" action "$action" window "$window" profile "$profile" \
		prev_run "$prevRun" prev_boot "$prevBoot" prev_gen "$prevGen" \
		failed_before "$failedBefore" target "$target"
	[ -z "$specName" ] || set -- "$@" specialisation "$specName"
	note "$@"
	# Guarded, the wait for the deployer needs the FIFO: without one,
	# nothing is activated.
	if [ "$window" != 0 ] && ! listen; then
		final "refused cannot make the FIFO $dir/wake.guard"
	fi
	if [ "$window" = 0 ]; then
		# Unguarded, as nixos-rebuild activates.
		case $action in
		switch | boot)
			if ! profile_set "$new"; then
				echo "lollypops: setting the system profile failed"
				final "done 1"
			fi
			;;
		esac
		stc "$target" "$action"
		note stc_rc "$rc" stc_started "$started" stc_ended "$ended"
		final "done $rc"
	fi
	stc "$target" test
	note stc_rc "$rc" stc_started "$started" stc_ended "$ended"
	resolved "$current"
	cur=$res
	case $rc in
	0 | 4) ;;
	100) final "needs-reboot the new system's init is incompatible with the running one's; it takes effect after a reboot" ;;
	11)
		if [ "$cur" = "$prevRun" ]; then
			final "refused another switch-to-configuration held its lock for ${lockwait}s"
		fi
		rollback "switch-to-configuration test failed (exit $rc)"
		;;
	*)
		if [ "$cur" = "$prevRun" ]; then
			final "refused switch-to-configuration test exited $rc without activating anything"
		fi
		rollback "switch-to-configuration test failed (exit $rc)"
		;;
	esac
	wait_confirmation
}

recover() {
	get profile
	profile=$got
	st=$(head -n 1 "$dir/status" 2>/dev/null) || st=
	case ${st%% *} in
	confirmed | rolled-back | rollback-failed | refused | needs-reboot | superseded | done) exit 0 ;;
	confirming) confirm ;;
	activated)
		# The deployer's word came, or comes now: it still counts.
		[ ! -e "$dir/confirm" ] || confirm
		[ ! -e "$dir/abort" ] || rollback "$(head -n 1 "$dir/abort")"
		;;
	esac
	echo "lollypops: the guard stopped in state \"${st%% *}\""
	get target
	if [ -z "$got" ]; then
		final "refused the guard stopped before it activated anything"
	fi
	rollback "the guard stopped (state ${st%% *}) before the activation was confirmed"
}

case $mode in
run)
	shift 2
	run "$@"
	;;
recover) recover ;;
*)
	echo "guard.sh: unknown mode $mode"
	exit 2
	;;
esac
