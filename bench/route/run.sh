#!/usr/bin/env bash
# bench/route/run.sh - the routing decision benchmark (docs/BENCHMARKS.md).
#
# Builds bench_route, starts a private redis-server (unix socket and a free
# TCP port on 127.0.0.1, no persistence), loads the Functions library and, for
# each number of agents and each backlog of waiting conversations, measures
# one routing decision (FCALL omr_conv_start that assigns) beside a minimal
# "equivalent" Lua script (EVALSHA) run by redis-benchmark and by bench_route
# with the same -c/-P, on the same Redis, back to back.
#
# Then the scale check: a second private redis-server holds the smallest
# scenario while the first still holds the largest, and short runs alternate
# between the two (ROUNDS times), so that both see the same machine load; the
# report takes the median of the per-round ratios.
#
# Prints a Markdown report (also $OUT/report.md); the raw RESULT/PROFILE lines
# are kept in $OUT/results.txt.
#
# Environment (defaults in brackets):
#   BUILD_DIR  build tree [/tmp/build-bench]; configured and built as needed
#   AGENTS     agent counts, ascending ["100 1000 10000"]
#   WAITING    waiting conversations, ascending ["0 10000 100000"]
#   N          pipelined decisions per scenario [20000]
#   LAT_N      one-at-a-time decisions per scenario (latency samples) [20000]
#   CONNS      connections for the throughput runs [1]
#   PIPELINE   requests per connection in flight (redis-benchmark -P) [50]
#   BASE_N     baseline script calls per throughput run [5 * N]
#   ROUNDS     scale-check rounds [7]; PAIR_N, PAIR_LAT: decisions per round [3000, 2000]
#   TRANSPORT  unix or tcp [unix]
#   OUT        directory for results.txt and report.md [a new temp dir]
#   LIBRARY    a variant of the Functions library to load instead of the built-in
set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-/tmp/build-bench}
AGENTS=${AGENTS:-"100 1000 10000"}
WAITING=${WAITING:-"0 10000 100000"}
N=${N:-20000}
LAT_N=${LAT_N:-20000}
CONNS=${CONNS:-1}
PIPELINE=${PIPELINE:-50}
BASE_N=${BASE_N:-$((5 * N))}
ROUNDS=${ROUNDS:-7}
PAIR_N=${PAIR_N:-3000}
PAIR_LAT=${PAIR_LAT:-2000}
TRANSPORT=${TRANSPORT:-unix}
OUT=${OUT:-$(mktemp -d /tmp/bench-route.XXXXXX)}
LIBRARY=${LIBRARY:-}

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

for tool in redis-server redis-benchmark redis-cli python3 cmake; do
	command -v "$tool" >/dev/null || { echo "run.sh: $tool is missing" >&2; exit 1; }
done

mkdir -p "$OUT"
log "building bench_route in $BUILD_DIR"
{
	if [[ ! -f $BUILD_DIR/CMakeCache.txt ]]; then
		cmake -S "$SRC" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo
	fi
	cmake --build "$BUILD_DIR" --target bench_route
} >"$OUT/build.log" 2>&1 || { cat "$OUT/build.log" >&2; exit 1; }
BIN=$BUILD_DIR/bench/bench_route
if [[ -n $LIBRARY ]]; then
	LIBSUM=$(sha1sum <"$LIBRARY" | cut -c1-12)
else
	LIBSUM=$(cat "$SRC"/router/lua/*.lua | sha1sum | cut -c1-12)
fi
RESULTS=$OUT/results.txt
: >"$RESULTS"

TMP=$(mktemp -d /tmp/bench-route-redis.XXXXXX)
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT

# start_redis NAME: a private redis-server in $TMP/NAME; sets CONN to the
# arguments that reach it (bench_route and redis-benchmark take the same).
start_redis() {
	local dir=$TMP/$1 port
	mkdir -p "$dir"
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	# stream-node-max-bytes: the setting README recommends (omnirouterd warns without it)
	redis-server --port "$port" --bind 127.0.0.1 --unixsocket "$dir/redis.sock" \
		--unixsocketperm 700 --save '' --appendonly no --dir "$dir" \
		--stream-node-max-bytes 1024 \
		--logfile "$dir/redis.log" &
	PIDS+=($!)
	for _ in $(seq 100); do
		[[ $(redis-cli -s "$dir/redis.sock" ping 2>/dev/null) == PONG ]] && break
		sleep 0.05
	done
	[[ $(redis-cli -s "$dir/redis.sock" ping) == PONG ]] ||
		{ echo "run.sh: redis-server did not start" >&2; exit 1; }
	if [[ $TRANSPORT == tcp ]]; then
		CONN=(-h 127.0.0.1 -p "$port")
	else
		CONN=(-s "$dir/redis.sock")
	fi
}

start_redis main
MAIN=("${CONN[@]}")
BR=("$BIN" "${MAIN[@]}")
SHA=$("${BR[@]}" ${LIBRARY:+-L "$LIBRARY"} load)

{
	echo "MACHINE cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs | tr ' ' '_')" \
		"cores=$(nproc) kernel=$(uname -r) redis=$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')" \
		"hiredis=$(pkg-config --modversion hiredis 2>/dev/null || echo '?') transport=$TRANSPORT" \
		"conns=$CONNS pipeline=$PIPELINE n=$N lat_n=$LAT_N base_n=$BASE_N rounds=$ROUNDS" \
		"pair_n=$PAIR_N pair_lat=$PAIR_LAT library_sha1=$LIBSUM" \
		"load_before=$(cut -d' ' -f1 /proc/loadavg)"
} >>"$RESULTS"
log "results in $OUT; Redis in $TMP, $TRANSPORT"

# redis-benchmark's CSV line -> per_s p50_us p99_us (its latencies are in ms).
rb() {
	redis-benchmark "${MAIN[@]}" -r 100000000 --precision 3 --csv "$@" EVALSHA "$SHA" 1 \
		'omr:{base}' 'c:__rand_int__' |
		awk -F'","' 'NR == 2 { printf "per_s=%.0f p50_us=%.1f p99_us=%.1f", \
			$2, $5 * 1000, $7 * 1000 }'
}

for agents in $AGENTS; do
	log "setup: $agents agents"
	"${BR[@]}" -a "$agents" setup
	for waiting in $WAITING; do
		log "backlog: $waiting waiting"
		"${BR[@]}" -w "$waiting" backlog
		tag="agents=$agents waiting=$waiting"
		{
			log "route: $tag"
			"${BR[@]}" -n "$N" -l "$LAT_N" -c "$CONNS" -P "$PIPELINE" -x route |
				sed "s/^PROFILE /PROFILE $tag /"
			log "baseline: bench_route and redis-benchmark"
			"${BR[@]}" -n "$BASE_N" -l "$LAT_N" -c "$CONNS" -P "$PIPELINE" baseline |
				grep '^RESULT' | sed "s/kind=baseline agents=[0-9]*/kind=baseline $tag/"
			echo "RESULT kind=rb_tput $tag $(rb -c "$CONNS" -P "$PIPELINE" -n "$BASE_N")"
			echo "RESULT kind=rb_lat $tag $(rb -c 1 -P 1 -n "$LAT_N")"
		} >>"$RESULTS"
	done
done

# The scale check: the smallest scenario on a second Redis, the largest still
# on the first, measured turn by turn.
read -r small_agents _ <<<"$AGENTS"
read -r small_waiting _ <<<"$WAITING"
start_redis ref
REF=(-s "$TMP/ref/redis.sock")
[[ $TRANSPORT == tcp ]] && REF=("${CONN[@]}")
"$BIN" "${REF[@]}" ${LIBRARY:+-L "$LIBRARY"} load >/dev/null
"$BIN" "${REF[@]}" -a "$small_agents" setup
"$BIN" "${REF[@]}" -w "$small_waiting" backlog
log "scale check: $ROUNDS rounds, $small_agents agents + $small_waiting waiting against the last scenario"
{
	for round in $(seq "$ROUNDS"); do
		for side in small large; do
			if [[ $side == small ]]; then target=("${REF[@]}"); else target=("${MAIN[@]}"); fi
			"$BIN" "${target[@]}" -n "$PAIR_N" -l "$PAIR_LAT" -c "$CONNS" -P "$PIPELINE" route |
				sed "s/kind=route/kind=pair side=$side round=$round/"
			"$BIN" "${target[@]}" -n "$((5 * PAIR_N))" -l 0 -c "$CONNS" -P "$PIPELINE" baseline |
				sed "s/kind=baseline agents=[0-9]*/kind=pair_base side=$side round=$round/"
		done
	done
	echo "MACHINE load_after=$(cut -d' ' -f1 /proc/loadavg)"
	redis-cli "${MAIN[@]}" info memory | grep -m1 '^used_memory_human' | sed 's/^/MEMORY /'
} >>"$RESULTS"

python3 "$SRC/bench/route/report.py" "$RESULTS" | tee "$OUT/report.md"
