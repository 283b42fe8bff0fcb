#!/bin/sh
# One node of a testbed Slurm cluster: `reboot NODE` simulates what a reboot does to
# Slurm and to the node, `start NODE` starts its slurmd. @DIR@ is the cluster's directory.
#
# A reboot kills the node's jobs (every process whose environment says it runs for the
# node: Slurm sets SLURMD_NODENAME in each job), asks the testbed's reboot service to take
# the node's sshd down and give it a new boot id (`reboot-requested` in its state dir),
# stops its slurmd, and starts it again with `-b` (report a reboot, as a freshly booted
# node does) after the node's down time. It returns at once, like `systemctl reboot`.
set -u
dir=@DIR@
export SLURM_CONF="$dir/etc/slurm.conf"
cmd=${1:-}
node=${2:-}
case "$node" in
'' | *[!A-Za-z0-9_-]*)
	echo "usage: $0 reboot|start NODE" >&2
	exit 2
	;;
esac
[ -f "$dir/nodes/$node/state_dir" ] || {
	echo "unknown node $node" >&2
	exit 2
}

start() {
	/usr/sbin/slurmd -N "$node" "$@"
}

stop_slurmd() {
	pid=$(cat "$dir/run/slurmd-$node.pid" 2>/dev/null) || return 0
	kill "$pid" 2>/dev/null || return 0
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.05
		i=$((i + 1))
	done
	kill -9 "$pid" 2>/dev/null
	return 0
}

kill_jobs() {
	for env in /proc/[0-9]*/environ; do
		pid=${env#/proc/}
		pid=${pid%/environ}
		[ "$pid" = $$ ] && continue
		if { tr '\0' '\n' <"$env"; } 2>/dev/null | grep -qx -e "SLURMD_NODENAME=$node" && { tr '\0' '\n' <"$env"; } 2>/dev/null | grep -qx "SLURM_CONF=$SLURM_CONF"; then
			kill -9 "$pid" 2>/dev/null
		fi
	done
}

case "$cmd" in
start)
	start
	;;
reboot)
	echo "$(date +%s%3N) reboot $node" >>"$dir/log/reboots"
	kill_jobs
	touch "$(cat "$dir/nodes/$node/state_dir")/reboot-requested"
	down=$(cat "$dir/down_for_ms")
	# Detached: slurmd runs this very script as its RebootProgram and is stopped here.
	# The restart records its process group, and gives up once the cluster is shut down
	# (`run/shut-down`), so a restart still pending when the cluster is dropped never
	# starts a slurmd for a cluster that is gone.
	setsid sh -c '
		echo $$ >"$3/run/restart-$2.pid"
		sleep "$1"
		[ -e "$3/run/shut-down" ] && exit 0
		"$0" stop-slurmd "$2"
		[ -e "$3/run/shut-down" ] && exit 0
		/usr/sbin/slurmd -N "$2" -b
	' "$0" "$(awk "BEGIN { print $down / 1000 }")" "$node" "$dir" </dev/null >/dev/null 2>&1 &
	;;
stop-slurmd)
	stop_slurmd
	;;
*)
	echo "usage: $0 reboot|start NODE" >&2
	exit 2
	;;
esac
