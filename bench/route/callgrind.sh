#!/usr/bin/env bash
# bench/route/callgrind.sh AGENTS WAITING [LIBRARY.lua ...] - instructions per
# routing decision, counted by valgrind's callgrind inside redis-server: the
# noise-free cost figure (docs/BENCHMARKS.md). Wall-clock figures on a shared
# machine swing by half; instruction counts repeat to within a fraction of a percent.
#
# A normal redis-server prepares the scenario (bench_route setup + backlog)
# and saves it; then, for the built-in library ("-") or each LIBRARY file given,
# a redis-server under callgrind loads that RDB and the library, and the counts
# are taken around N starts alone (bench_route route -k), N starts with their
# closes, and 4N calls of the baseline script. Prints one line per library.
# Environment: BUILD_DIR [/tmp/build-bench], N [500]. Takes minutes.
set -euo pipefail

[[ $# -ge 2 ]] || { echo "usage: $0 AGENTS WAITING [LIBRARY.lua|- ...]" >&2; exit 2; }
AGENTS=$1
WAITING=$2
shift 2
[[ $# -gt 0 ]] || set -- -
N=${N:-500}
MARKER=$(printf '~%.0s' $(seq 80)) # longer than zset-max-listpack-value
# shellcheck source=bench/callgrind_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../callgrind_common.sh"
cg_init bench-route-cg

mkdir "$TMP/prep"
serve "$TMP/prep"
"$BIN" -s "$TMP/prep/redis.sock" load >/dev/null
"$BIN" -s "$TMP/prep/redis.sock" -a "$AGENTS" setup 2>/dev/null
"$BIN" -s "$TMP/prep/redis.sock" -w "$WAITING" backlog 2>/dev/null
redis-cli -s "$TMP/prep/redis.sock" save >/dev/null
stop

i=0
for lib in "$@"; do
	i=$((i + 1))
	dir=$TMP/run$i
	mkdir "$dir"
	cp "$TMP/prep/dump.rdb" "$dir/"
	serve "$dir" valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out"
	sock=$dir/redis.sock
	load_library "$sock" "$lib"
	# The availability sets as the daemon keeps them: skiplists (reindex in
	# router/lua/10_index.lua). Loading the RDB made the small ones listpacks.
	redis-cli -s "$sock" --scan --pattern 'omr:{bench}:avail:*' | while read -r key; do
		printf 'ZADD %s 0 %s\nZREM %s %s\n' "$key" "$MARKER" "$key" "$MARKER"
	done | redis-cli -s "$sock" >/dev/null
	callgrind_control -z "$PID" >/dev/null
	"$BIN" -s "$sock" -k -n "$N" -l 0 route >/dev/null
	callgrind_control -d starts "$PID" >/dev/null
	"$BIN" -s "$sock" -n "$N" -l 0 route >/dev/null
	callgrind_control -d cycles "$PID" >/dev/null
	"$BIN" -s "$sock" -n "$((4 * N))" -l 0 baseline >/dev/null
	callgrind_control -d baseline "$PID" >/dev/null
	stop
	starts=$(instructions "$dir/cg.out.1")
	cycles=$(instructions "$dir/cg.out.2")
	base=$(instructions "$dir/cg.out.3")
	echo "RESULT kind=instructions library=$lib agents=$AGENTS waiting=$WAITING n=$N" \
		"start=$((starts / N)) close=$(((cycles - starts) / N)) script=$((base / (4 * N)))"
done
