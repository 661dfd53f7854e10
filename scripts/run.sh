#!/usr/bin/env bash
# run.sh [CONFIG] - run omnirouterd in the foreground for development (`make run`).
#
# CONFIG defaults to the repository's config/omnirouter.yaml; a relative CONFIG is tried from
# the current directory, then from the repository root. The daemon runs from the repository
# root, so the default websocket.static_dir "web" serves the repository's web/ pages.
#
# Redis: if a Redis answers PING at redis.host:redis.port of the config, it is used (e.g. the
# Debian redis-server service on 127.0.0.1:6379). Otherwise, for a local redis.host, a private
# redis-server is started on that port (bind 127.0.0.1, appendonly yes, data and log in
# .run/redis/) and stopped again when the daemon exits, however it exits.
#
# Then it prints the customer and agent URLs and execs the daemon (build/release/omnirouterd,
# or $OMR_BUILD_DIR/omnirouterd): Ctrl-C stops it, SIGTERM drains, SIGHUP reloads the config.
#
# The config is read with a tiny awk parser that only understands the simple layout of
# config/omnirouter.yaml: top-level "section:" lines, each followed by indented "key: value"
# lines (value plain or in quotes, optional "# comment"). No anchors, flow style or multi-line
# values. Keys it does not find take the daemon's defaults (redis 127.0.0.1:6379, websocket
# 127.0.0.1:8080).
set -euo pipefail

prog=${0##*/}
die() {
	printf '%s: ERROR: %s\n' "$prog" "$*" >&2
	exit 1
}
say() {
	printf '%s: %s\n' "$prog" "$*"
}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

case ${1:-} in
-h | --help)
	sed -n '2,21s/^# \{0,1\}//p' "$0"
	exit 0
	;;
esac
(($# <= 1)) || die "usage: $prog [CONFIG]"

config_arg=${1:-$root/config/omnirouter.yaml}
if [[ -f "$config_arg" ]]; then
	config=$(realpath "$config_arg")
elif [[ "$config_arg" != /* && -f "$root/$config_arg" ]]; then
	config="$root/$config_arg"
else
	die "config file not found: $config_arg"
fi
cd "$root"
# Shown and passed relative to the repository root when inside it (the daemon runs there).
config_rel=${config#"$root"/}

build_dir=${OMR_BUILD_DIR:-build/release}
daemon="$build_dir/omnirouterd"
ctl="$build_dir/omnirouterctl"
[[ -x "$daemon" ]] || die "$daemon not built: run 'make build' (or 'make run')"

# yaml_get SECTION KEY DEFAULT: value of KEY in top-level SECTION, or DEFAULT when absent/empty.
yaml_get() {
	local v
	v=$(awk -v sec="$1" -v key="$2" '
		/^[[:space:]]*(#|$)/ { next }
		/^[^[:space:]]/ {
			s = $0; sub(/[[:space:]]*:.*$/, "", s); insec = (s == sec); next
		}
		insec {
			line = $0; sub(/^[[:space:]]+/, "", line)
			k = line; sub(/[[:space:]]*:.*$/, "", k)
			if (k != key) next
			v = line; sub(/^[^:]*:[[:space:]]*/, "", v)
			if (v ~ /^"/) { sub(/^"/, "", v); sub(/".*$/, "", v) }
			else if (v ~ /^\047/) { sub(/^\047/, "", v); sub(/\047.*$/, "", v) }
			else { sub(/[[:space:]]+#.*$/, "", v); sub(/[[:space:]]+$/, "", v) }
			print v; exit
		}' "$config")
	printf '%s' "${v:-$3}"
}

redis_host=$(yaml_get redis host 127.0.0.1)
redis_port=$(yaml_get redis port 6379)
redis_username=$(yaml_get redis username "")
redis_password=$(yaml_get redis password "")
ws_listen=$(yaml_get websocket listen 127.0.0.1)
ws_port=$(yaml_get websocket port 8080)
[[ "$redis_port" =~ ^[0-9]+$ ]] || die "redis.port '$redis_port' in $config_rel is not a number"
[[ "$ws_port" =~ ^[0-9]+$ ]] || die "websocket.port '$ws_port' in $config_rel is not a number"

command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found: run scripts/deps.sh"
# redis-cli reads the password from the environment (not visible in ps).
if [[ -n "$redis_password" ]]; then
	export REDISCLI_AUTH="$redis_password"
fi
cli_user=()
[[ -z "$redis_username" ]] || cli_user=(--user "$redis_username")

# redis_state: "up" (PONG), "auth" (a Redis is there but refuses our password), "down".
redis_state() {
	local reply
	reply=$(timeout 3 redis-cli --no-auth-warning "${cli_user[@]}" -h "$redis_host" -p "$redis_port" ping 2>&1) || true
	# (a refused ACL user's AUTH is reported, then PING runs as the default user)
	case $reply in
	*NOAUTH* | *WRONGPASS* | *"invalid password"* | *"AUTH failed"*) echo auth ;;
	*PONG*) echo up ;;
	*) echo down ;;
	esac
}

state_dir="$root/.run/redis"
redis_pid=""
stop_private_redis() {
	[[ -n "$redis_pid" ]] || return 0
	if kill -0 "$redis_pid" 2>/dev/null; then
		kill -TERM "$redis_pid" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$redis_pid" 2>/dev/null || break
			sleep 0.2
		done
	fi
	redis_pid=""
}
# Before exec only: stops the private Redis when this script fails or is interrupted.
# (exec replaces the shell and its traps; from then on the watcher below does it.)
trap stop_private_redis EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs in its own session (no terminal signals: Ctrl-C reaches the daemon only, which can drain
# while Redis is still up): starts redis-server, records its pid, waits until the process $1
# (this script, later the exec'ed daemon) is gone, then shuts Redis down (SIGTERM: clean
# shutdown, the append-only file is flushed).
# shellcheck disable=SC2016
watcher='
main=$1 dir=$2
shift 2
echo "=== run.sh: redis-server $* ($(date))" >>"$dir/redis.log"
redis-server "$@" >>"$dir/redis.log" 2>&1 </dev/null &
rpid=$!
echo "$rpid" >"$dir/redis.pid.tmp" && mv "$dir/redis.pid.tmp" "$dir/redis.pid"
while kill -0 "$main" 2>/dev/null && kill -0 "$rpid" 2>/dev/null; do
	sleep 0.5
done
kill -TERM "$rpid" 2>/dev/null
wait "$rpid"
rm -f "$dir/redis.pid"
'

# A private Redis of a run that just ended may still be shutting down (its watcher polls every
# 0.5 s): let it go rather than find it answering now and gone a moment later. One that stays
# belongs to a run still going and is simply used.
if [[ -s "$state_dir/redis.pid" ]]; then
	old_pid=$(<"$state_dir/redis.pid")
	for _ in $(seq 50); do
		[[ "$(cat "/proc/$old_pid/comm" 2>/dev/null)" == redis-server ]] || break
		sleep 0.1
	done
fi

case $(redis_state) in
up)
	say "using the Redis at $redis_host:$redis_port"
	;;
auth)
	die "a Redis answers at $redis_host:$redis_port but rejects redis.username/redis.password from $config_rel"
	;;
down)
	case $redis_host in
	127.* | localhost | ::1) ;;
	*) die "no Redis answers at $redis_host:$redis_port; a private one can only be started for a local redis.host" ;;
	esac
	command -v redis-server >/dev/null 2>&1 || die "redis-server not found: run scripts/deps.sh"
	command -v setsid >/dev/null 2>&1 || die "setsid not found (package util-linux)"
	bind=127.0.0.1
	[[ "$redis_host" == ::1 ]] && bind=::1
	mkdir -p "$state_dir"
	rm -f "$state_dir/redis.pid"
	args=(--port "$redis_port" --bind "$bind" --daemonize no --dir "$state_dir"
		--appendonly yes --save "" --protected-mode yes --loglevel notice
		--stream-node-max-bytes 1024) # README: Running it for real
	if [[ -n "$redis_password" ]]; then
		args+=(--requirepass "$redis_password")
	fi
	if [[ -n "$redis_username" ]]; then # redis.username: that ACL user, with every right
		pass=nopass
		[[ -z "$redis_password" ]] || pass=">$redis_password"
		args+=(--user "$redis_username" on "$pass" '~*' '&*' '+@all')
	fi
	say "no Redis at $redis_host:$redis_port: starting a private redis-server (data and log in .run/redis/)"
	setsid bash -c "$watcher" omr-redis-watcher "$$" "$state_dir" "${args[@]}" </dev/null >/dev/null 2>&1 &
	up=0
	for _ in $(seq 100); do
		if [[ -z "$redis_pid" && -s "$state_dir/redis.pid" ]]; then
			redis_pid=$(<"$state_dir/redis.pid")
		fi
		if [[ -n "$redis_pid" ]]; then
			if ! kill -0 "$redis_pid" 2>/dev/null; then
				# print the log from the last start marker on
				# shellcheck disable=SC2016
				sed -n '/^=== run.sh/h; /^=== run.sh/!H; ${x;p}' "$state_dir/redis.log" >&2 || true
				redis_pid=""
				die "the private redis-server exited (log above, in .run/redis/redis.log)"
			fi
			if [[ "$(redis_state)" == up ]]; then
				up=1
				break
			fi
		fi
		sleep 0.1
	done
	((up)) || die "the private redis-server did not answer PING within 10 s (see .run/redis/redis.log)"
	say "private Redis up on $bind:$redis_port (pid $redis_pid); it stops when the daemon exits"
	;;
esac

case $ws_listen in
0.0.0.0 | "*") url_host=127.0.0.1 ;;
:: | "[::]") url_host="[::1]" ;;
*:*) url_host="[${ws_listen#[}" && url_host="${url_host%]}]" ;;
*) url_host=$ws_listen ;;
esac

cat <<EOF

  Customer chat: http://$url_host:$ws_port/
  Agent desktop: http://$url_host:$ws_port/agent.html

  Create an agent (prints the agent's login token), in another terminal:
    $ctl -c $config_rel agent add --id ana --name Ana --languages en,es --capacity 2

  Ctrl-C stops the daemon (SIGTERM drains, SIGHUP reloads $config_rel).

EOF

trap - INT TERM
unset REDISCLI_AUTH
exec "$daemon" -c "$config_rel"
