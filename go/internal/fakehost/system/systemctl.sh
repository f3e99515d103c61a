# systemctl stand-in: on NixOS systemd runs sshd.service; on a fake host
# the host's init does, and this talks to it. Only sshd exists.
unit=${2-}
unit=${unit%.service}
case ${1-} in
start | stop | restart)
	if [ "$unit" != sshd ]; then
		echo "Failed to $1 ${2-}: Unit ${2-} not found." >&2
		exit 5
	fi
	service "$1" sshd
	;;
is-active)
	if [ "$unit" = sshd ] && sshd_active; then
		echo active
	else
		echo inactive
		exit 3
	fi
	;;
*)
	echo "systemctl (fake host): only start, stop, restart and is-active of sshd.service" >&2
	exit 1
	;;
esac
