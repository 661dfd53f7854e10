#!/usr/bin/env bash
# bench/chat/callgrind.sh [LIBRARY.lua|- ...] - instructions inside redis-server
# per customer chat message (FCALL omr_conv_message to an assigned
# conversation: the transcript XADD, the inbox XADD, de-duplication, the
# notification), counted by valgrind's callgrind: the noise-free figure beside
# the wall-clock bench (docs/BENCHMARKS.md).
#
# For the built-in library ("-") or each LIBRARY file given (e.g. an older
# router/lua/*.lua concatenated), a redis-server under callgrind gets the
# library, 10 agents and one assigned conversation (bench_route load, setup,
# route), the agent's inbox group, and then N messages of 180 bytes through
# redis-cli --pipe; counting covers those N. Prints one line per library.
# Environment: BUILD_DIR [/tmp/build-bench], N [400: a long chat; 100: a
# short one], BATCH [1: omr_conv_message per message; more: omr_conv_messages
# with BATCH messages per call, as the router sends a loop turn's messages].
# Takes a minute per library.
set -euo pipefail

[[ $# -gt 0 ]] || set -- -
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-/tmp/build-bench}
N=${N:-400}
BATCH=${BATCH:-1}
for tool in valgrind callgrind_control redis-server redis-cli cmake python3; do
	command -v "$tool" >/dev/null || { echo "callgrind.sh: $tool is missing" >&2; exit 1; }
done
{
	[[ -f $BUILD_DIR/CMakeCache.txt ]] ||
		cmake -S "$SRC" -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build "$BUILD_DIR" --target bench_route
} >/dev/null 2>&1 || { echo "callgrind.sh: build failed" >&2; exit 1; }
BIN=$BUILD_DIR/bench/bench_route
P='omr:{bench}'

TMP=$(mktemp -d /tmp/bench-chat-cg.XXXXXX)
PID=
cleanup() {
	if [[ -n $PID ]]; then
		kill "$PID" 2>/dev/null || true
		wait "$PID" 2>/dev/null || true
	fi
	rm -rf "$TMP"
}
trap cleanup EXIT

TEXT=$(head -c 180 /dev/zero | tr '\0' x)
i=0
for lib in "$@"; do
	i=$((i + 1))
	dir=$TMP/run$i
	mkdir "$dir"
	sock=$dir/redis.sock
	valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" redis-server --port 0 \
		--unixsocket "$sock" --unixsocketperm 700 --save '' --appendonly no --dir "$dir" \
		>"$dir/out.log" 2>&1 &
	PID=$!
	for _ in $(seq 3000); do
		[[ $(redis-cli -s "$sock" ping 2>/dev/null) == PONG ]] && break
		sleep 0.1
	done
	if [[ $lib == - ]]; then
		"$BIN" -s "$sock" load >/dev/null
	else
		"$BIN" -s "$sock" -L "$lib" load >/dev/null
	fi
	"$BIN" -s "$sock" -a 10 setup 2>/dev/null
	"$BIN" -s "$sock" -k -n 1 -l 0 route >/dev/null 2>&1
	conv=r0
	state=$(redis-cli -s "$sock" HGET "$P:conv:$conv" state)
	agent=$(redis-cli -s "$sock" HGET "$P:conv:$conv" agent)
	[[ $state == assigned ]] || { echo "callgrind.sh: conversation not assigned ($state)" >&2; exit 1; }
	# The agent's desktop logged in once: its inbox has the consumer group.
	redis-cli -s "$sock" XGROUP CREATE "$P:agent:$agent:inbox" desktop 0 MKSTREAM >/dev/null 2>&1 || true
	python3 - "$N" "$BATCH" "$P" "$conv" "$TEXT" >"$dir/cmds" <<'PY'
import sys
n, batch, prefix, conv, text = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def resp(*args):
    out = ["*%d\r\n" % len(args)]
    for a in args:
        out.append("$%d\r\n%s\r\n" % (len(a.encode()), a))
    return "".join(out)
if batch == 1:
    for i in range(n):
        sys.stdout.write(resp("FCALL", "omr_conv_message", "1", prefix, conv, "customer", "",
                              "m%d" % i, text, "", "1000000"))
else:
    for first in range(0, n, batch):
        args = []
        for i in range(first, min(n, first + batch)):
            args += [conv, "customer", "", "m%d" % i, text, ""]
        sys.stdout.write(resp("FCALL", "omr_conv_messages", "1", prefix, "1000000", *args))
PY
	callgrind_control -z "$PID" >/dev/null 2>&1
	redis-cli -s "$sock" --pipe <"$dir/cmds" >"$dir/pipe.out"
	callgrind_control -d messages "$PID" >/dev/null 2>&1
	kill "$PID"
	wait "$PID" 2>/dev/null || true
	PID=
	calls=$(((N + BATCH - 1) / BATCH))
	grep -q "errors: 0, replies: $calls" "$dir/pipe.out" || { cat "$dir/pipe.out" >&2; exit 1; }
	ins=$(awk '/^summary:/ {print $2}' "$dir/cg.out.1")
	echo "RESULT kind=instructions library=$lib messages=$N batch=$BATCH per_message=$((ins / N))"
done
