#!/bin/sh
# A fake batch scheduler for the drover demo, called by the site's drain hooks:
#
#   scheduler.sh STATE_DIR drain NODE REASON | drained NODE | resume NODE
#
# Its state is files under STATE_DIR/scheduler: NODE holds `idle`, `draining` or
# `drained`; NODE.job the time (unix seconds) the node's running job ends; NODE.reason
# the drain reason; `log` one line per drain and resume, in order. Every node runs a job
# that ends a second after the drain request, so draining takes a moment, as it would
# on a real cluster. POSIX sh and coreutils only.
set -eu
S="$1/scheduler"
hook=$2
node=$3
case $node in '' | */* | .*) echo "scheduler: invalid node name '$node'" >&2; exit 2 ;; esac
mkdir -p "$S"
now=$(date +%s)
state=$(cat "$S/$node" 2>/dev/null || echo idle)
put() { printf '%s\n' "$2" > "$S/$1.tmp.$$" && mv -f "$S/$1.tmp.$$" "$S/$1"; }

if [ "$state" = draining ] && [ "$now" -ge "$(cat "$S/$node.job")" ]; then
	put "$node" drained
	state=drained
fi

case $hook in
drain)
	put "$node.reason" "$4"
	if [ "$state" = idle ]; then
		put "$node.job" $((now + 1))
		put "$node" draining
	fi
	printf '%s drain %s\n' "$now" "$node" >> "$S/log"
	;;
drained)
	echo "$state"
	[ "$state" = drained ]
	;;
resume)
	put "$node" idle
	rm -f "$S/$node.reason"
	printf '%s resume %s\n' "$now" "$node" >> "$S/log"
	;;
*)
	echo "scheduler: unknown hook '$hook'" >&2
	exit 2
	;;
esac
