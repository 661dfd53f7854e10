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
N=${N:-400}
BATCH=${BATCH:-1}
P='omr:{bench}'
# shellcheck source=bench/callgrind_common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../callgrind_common.sh"
cg_init bench-chat-cg python3

TEXT=$(head -c 180 /dev/zero | tr '\0' x)
i=0
for lib in "$@"; do
	i=$((i + 1))
	dir=$TMP/run$i
	mkdir "$dir"
	sock=$dir/redis.sock
	serve "$dir" valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out"
	load_library "$sock" "$lib"
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
	stop
	calls=$(((N + BATCH - 1) / BATCH))
	grep -q "errors: 0, replies: $calls" "$dir/pipe.out" || { cat "$dir/pipe.out" >&2; exit 1; }
	ins=$(instructions "$dir/cg.out.1")
	echo "RESULT kind=instructions library=$lib messages=$N batch=$BATCH per_message=$((ins / N))"
done
