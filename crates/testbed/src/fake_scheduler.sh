#!/bin/sh
# drover testbed: a fake scheduler (FakeScheduler::install); generated, do not edit.
#
# Usage: fake-scheduler drain NODE REASON | drained NODE | resume NODE | resumed NODE
# (bin/drain, bin/drained, bin/resume and bin/resumed call this with their own name).
#
# Everything is a file under D, so a test and its monitor can read the scheduler's state
# while hooks run: state/NODE (idle, draining or drained), reason/NODE (the last drain
# reason), jobs/NODE (the end of the node's job, unix ms), calls/NODE/HOOK (one line per
# call) and log (one line per call, every node). POSIX sh and coreutils only: /bin/sh is
# dash on Debian.
set -u
D='@DIR@'
now=$(date +%s%3N)
hook=${1-}
node=${2-}

# The log first, so even a refused call is on record. Appending one short line is one
# write(2) to a file opened with O_APPEND, which concurrent calls cannot interleave.
if [ "$hook" = drain ]; then
	printf '%s %s %s %s\n' "$now" "$hook" "$node" "$(printf '%s' "${3-}" | tr '\n' ' ')" >>"$D/log"
else
	printf '%s %s %s\n' "$now" "$hook" "$node" >>"$D/log"
fi

fail() {
	echo "fake scheduler: $*" >&2
	exit 2
}

case $hook in
drain) [ $# -eq 3 ] || fail "usage: drain NODE REASON" ;;
drained | resume | resumed) [ $# -eq 2 ] || fail "usage: $hook NODE" ;;
*) fail "unknown hook '$hook'" ;;
esac
case $node in
'' | */* | .*) fail "invalid node name '$node'" ;;
esac
[ -f "$D/state/$node" ] || fail "unknown node '$node'"

# A tally rather than a number to increment: appends cannot lose a count when calls
# race, which is exactly when a test wants to see the second call.
printf '%s\n' "$now" >>"$D/calls/$node/$hook"

# put FILE TEXT: replaces FILE atomically (a temp file renamed over it), because a
# monitor may read it at any moment and must never see it empty.
put() {
	printf '%s\n' "$2" >"$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"
}

# Whether the node's job still runs: its end time is in the future.
job_running() {
	[ -f "$D/jobs/$node" ] || return 1
	end=$(cat "$D/jobs/$node")
	[ "$now" -lt "$end" ] 2>/dev/null
}

state=$(cat "$D/state/$node")
# A resuming node is back once its delay is over (Slurm's `idle*` until slurmd answers).
if [ "$state" = resuming ]; then
	back=$(cat "$D/back/$node" 2>/dev/null || echo 0)
	if [ "$now" -ge "$back" ] 2>/dev/null; then
		put "$D/state/$node" idle
		state=idle
	fi
fi
# A draining node whose job has ended is drained: the real scheduler would have noticed
# in the meantime, whoever asks first.
if [ "$state" = draining ] && ! job_running; then
	put "$D/state/$node" drained
	state=drained
fi

case $hook in
drain)
	# Like `scontrol update state=drain`: a node already draining or drained keeps its
	# state and only gets the new reason.
	put "$D/reason/$node" "$3"
	# A node still coming back from a resume is in service as far as a drain goes.
	if [ "$state" = idle ] || [ "$state" = resuming ]; then
		if job_running; then
			put "$D/state/$node" draining
		else
			put "$D/state/$node" drained
		fi
	fi
	;;
drained)
	echo "$state"
	[ "$state" = drained ]
	;;
resume)
	# With a resume delay the node is `resuming` (out of service) until it is over.
	delay=$(cat "$D/resume_delay" 2>/dev/null || echo 0)
	if [ "$delay" -gt 0 ] 2>/dev/null; then
		put "$D/back/$node" $((now + delay))
		put "$D/state/$node" resuming
	else
		put "$D/state/$node" idle
	fi
	rm -f "$D/reason/$node"
	;;
resumed)
	echo "$state"
	[ "$state" = idle ]
	;;
esac
