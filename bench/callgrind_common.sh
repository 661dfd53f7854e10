# bench/callgrind_common.sh - sourced by bench/route/callgrind.sh and
# bench/chat/callgrind.sh: the tools they need, bench_route built in
# BUILD_DIR (default /tmp/build-bench), a temporary directory removed on exit
# (with the redis-server still running, if any), and these helpers:
#
#   cg_init NAME [TOOL...]  checks the tools, builds; sets SRC, BIN, TMP
#   serve DIR [CMD...]      redis-server on DIR/redis.sock, run under CMD
#                           (e.g. valgrind ...); its pid in PID
#   stop                    stops it
#   load_library SOCK LIB   loads the built-in Functions library ("-") or LIB
#   instructions FILE       the instruction total of a callgrind dump
#
# STREAM_NODE_MAX_BYTES [1024, what README recommends]: the redis-server's
# stream-node-max-bytes.

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-/tmp/build-bench}
BIN=$BUILD_DIR/bench/bench_route
STREAM_NODE_MAX_BYTES=${STREAM_NODE_MAX_BYTES:-1024}
TMP=
PID=

cg_cleanup() {
	if [[ -n $PID ]]; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	[[ -z $TMP ]] || rm -rf "$TMP"
}

cg_init() {
	local name=$1 tool
	shift
	for tool in valgrind callgrind_control redis-server redis-cli cmake "$@"; do
		command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool is missing" >&2; exit 1; }
	done
	{
		[[ -f $BUILD_DIR/CMakeCache.txt ]] ||
			cmake -S "$SRC" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo
		cmake --build "$BUILD_DIR" --target bench_route
	} >/dev/null 2>&1 || { echo "callgrind.sh: build failed" >&2; exit 1; }
	TMP=$(mktemp -d "/tmp/$name.XXXXXX")
	trap cg_cleanup EXIT
}

serve() {
	local dir=$1
	shift
	"$@" redis-server --port 0 --unixsocket "$dir/redis.sock" --unixsocketperm 700 --save '' \
		--appendonly no --stream-node-max-bytes "$STREAM_NODE_MAX_BYTES" --dir "$dir" --logfile "$dir/redis.log" >"$dir/out.log" 2>&1 &
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

load_library() {
	if [[ $2 == - ]]; then
		"$BIN" -s "$1" load >/dev/null
	else
		"$BIN" -s "$1" -L "$2" load >/dev/null
	fi
}

instructions() {
	awk '/^summary:/ {print $2}' "$1"
}
