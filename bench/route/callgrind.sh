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
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-/tmp/build-bench}
N=${N:-500}
MARKER=$(printf '~%.0s' $(seq 80)) # longer than zset-max-listpack-value
for tool in valgrind callgrind_control redis-server redis-cli cmake; do
	command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool is missing" >&2; exit 1; }
done
{
	[[ -f $BUILD_DIR/CMakeCache.txt ]] ||
		cmake -S "$SRC" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build "$BUILD_DIR" --target bench_route
} >/dev/null 2>&1 || { echo "callgrind.sh: build failed" >&2; exit 1; }
BIN=$BUILD_DIR/bench/bench_route

TMP=$(mktemp -d /tmp/bench-route-cg.XXXXXX)
PID=
cleanup() {
	if [[ -n $PID ]]; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

# serve DIR [valgrind args...]: redis-server on DIR/redis.sock, pid in PID.
serve() {
	local dir=$1
	shift
	"$@" redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 --save '' \
		--appendonly no --dir "$dir" --logfile "$dir/redis.log" >"$dir/out.log" 2>&1 &
	PID=$!
	for _ in $(seq 3000); do
		[[ $(redis-cli -s "$dir/redis.sock" ping 2>/dev/null) == PONG ]] && return
		sleep 0.1
	done
	echo "callgrind.sh: redis-server did not start" >&2
	exit 1
}

stop() {
	kill "$PID"
	wait "$PID" 2>/dev/null || true
	PID=
}

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
	if [[ $lib == - ]]; then
		"$BIN" -s "$sock" load >/dev/null
	else
		"$BIN" -s "$sock" -L "$lib" load >/dev/null
	fi
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
	starts=$(awk '/^summary:/ {print $2}' "$dir/cg.out.1")
	cycles=$(awk '/^summary:/ {print $2}' "$dir/cg.out.2")
	base=$(awk '/^summary:/ {print $2}' "$dir/cg.out.3")
	echo "RESULT kind=instructions library=$lib agents=$AGENTS waiting=$WAITING n=$N" \
		"start=$((starts / N)) close=$(((cycles - starts) / N)) script=$((base / (4 * N)))"
done
