#!/usr/bin/env bash
# test_systemd.sh - the shipped systemd unit passes `systemd-analyze verify` and scores at most
# 2.0 in `systemd-analyze security --offline=true` (--threshold is on a x10 scale: 20 = 2.0).
# The sysusers.d and tmpfiles.d snippets are applied to a throw-away root.
#
# What is checked is the unit as installed: the build tree is staged with
# `cmake --install $OMR_BUILD_DIR --prefix /usr` into a temporary DESTDIR (nothing is built).
#
# How verify is made honest: `verify` insists that ExecStart's binary exists, and
# /usr/sbin/omnirouterd does not exist on a build host. `--root=STAGE` does not help: it resolves
# everything inside STAGE (sysinit.target, /bin/kill, ...), which is not an OS. So the installed
# unit is copied and only its ExecStart and ExecReload binary paths are prefixed with the staging directory,
# i.e. it points at the file `cmake --install` put at /usr/sbin/omnirouterd; the test asserts
# that these are the only lines changed (ExecStart, and ExecReload's config check). Everything else (directives, /bin/kill, the units it
# orders against) is checked against this host, which is the Debian 12 the unit targets.
set -euo pipefail

: "${OMR_BUILD_DIR:?OMR_BUILD_DIR must name the CMake build directory}"

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "FAIL: systemd-analyze not found (package systemd; run scripts/deps.sh --test)" >&2
	exit 1
fi
echo "# $(systemd-analyze --version | head -n1)"

work=$(mktemp -d "${TMPDIR:-/tmp}/omr-systemd.XXXXXX")
trap 'rm -rf "$work"' EXIT
stage="$work/stage"
mkdir -p "$stage"

if ! DESTDIR="$stage" cmake --install "$OMR_BUILD_DIR" --prefix /usr >"$work/install.log" 2>&1; then
	cat "$work/install.log" >&2
	echo "FAIL: cmake --install $OMR_BUILD_DIR --prefix /usr failed" >&2
	exit 1
fi

unit="$stage/usr/lib/systemd/system/omnirouterd.service"
if [[ ! -f "$unit" ]]; then
	echo "FAIL: install did not produce usr/lib/systemd/system/omnirouterd.service" >&2
	exit 1
fi

failures=0

# 1. verify
exe=$(sed -n 's/^ExecStart=\([^[:space:]]*\).*/\1/p' "$unit")
if [[ "$exe" != /* || ! -x "$stage$exe" ]]; then
	echo "FAIL: ExecStart binary '$exe' is not installed at that path" >&2
	exit 1
fi
mkdir -p "$work/verify"
vunit="$work/verify/omnirouterd.service"
sed "s|^\(Exec[A-Za-z]*\)=$exe |\1=$stage$exe |" "$unit" >"$vunit"
changed=$(diff "$unit" "$vunit" | grep -c '^>' || true)
if [[ "$changed" != 2 ]]; then
	echo "FAIL: expected to rewrite exactly two lines (ExecStart, ExecReload), rewrote $changed" >&2
	exit 1
fi
echo "# systemd-analyze verify omnirouterd.service ($exe -> $stage$exe)"
# verify exits 0 on an unknown or misspelt directive (it only warns, and systemd would ignore
# the line): any message about our unit fails the test. Messages about other units on this
# host are shown but are not ours to fix.
if systemd-analyze verify --man=no "$vunit" 2>"$work/verify.err"; then
	if grep -q 'omnirouterd' "$work/verify.err"; then
		echo "FAIL: systemd-analyze verify warned about the unit:" >&2
		cat "$work/verify.err" >&2
		failures=$((failures + 1))
	else
		[[ -s "$work/verify.err" ]] && sed 's/^/note (not our unit): /' "$work/verify.err"
		echo "ok: systemd-analyze verify"
	fi
else
	cat "$work/verify.err" >&2
	echo "FAIL: systemd-analyze verify" >&2
	failures=$((failures + 1))
fi

# 2. `systemctl reload` runs the ExecReload lines in order and stops at the first that fails:
#    the first checks the configuration ExecStart names, so a file that does not load fails the
#    reload before the daemon is signalled. Run here with the staged binary.
start_args=$(sed -n "s|^ExecStart=$exe ||p" "$unit")
mapfile -t reloads < <(sed -n 's/^ExecReload=//p' "$unit")
if [[ ${#reloads[@]} != 2 || "${reloads[0]}" != "$exe --check-config $start_args" ||
	"${reloads[1]}" != '/bin/kill -HUP $MAINPID' ]]; then
	printf 'FAIL: ExecReload should be "%s --check-config %s" then the HUP; it is:\n' \
		"$exe" "$start_args" >&2
	printf '  %s\n' "${reloads[@]}" >&2
	failures=$((failures + 1))
else
	cfg=$(sed -n 's/.*-c \([^[:space:]]*\).*/\1/p' <<<"$start_args")
	cp "$stage$cfg" "$work/good.yaml"
	printf 'routing:\n  tick_ms: fast\n' >"$work/bad.yaml"
	if ! "$stage$exe" --check-config -c "$work/good.yaml" >"$work/reload.out" 2>&1; then
		cat "$work/reload.out" >&2
		echo "FAIL: the reload check refuses the shipped configuration" >&2
		failures=$((failures + 1))
	elif "$stage$exe" --check-config -c "$work/bad.yaml" >"$work/reload.out" 2>&1 ||
		! grep -q 'tick_ms' "$work/reload.out"; then
		cat "$work/reload.out" >&2
		echo "FAIL: the reload check passed a configuration that does not load" >&2
		failures=$((failures + 1))
	else
		echo "ok: ExecReload checks $cfg before signalling (a bad file: $(head -n1 "$work/reload.out"))"
	fi
fi

# 3. security score of the installed (unmodified) unit
echo "# systemd-analyze security --offline=true --threshold=20 omnirouterd.service"
rc=0
systemd-analyze security --offline=true --threshold=20 "$unit" >"$work/security.out" 2>&1 || rc=$?
score_line=$(grep -a 'Overall exposure level' "$work/security.out" || true)
if [[ -z "$score_line" ]]; then
	cat "$work/security.out" >&2
	echo "FAIL: systemd-analyze security printed no score (exit $rc)" >&2
	failures=$((failures + 1))
elif ((rc != 0)); then
	grep -a '✗' "$work/security.out" >&2 || true
	echo "FAIL: $score_line (threshold 2.0)" >&2
	failures=$((failures + 1))
else
	echo "ok: ${score_line#→ } (threshold 2.0)"
fi

# 4. sysusers.d / tmpfiles.d snippets parse and do what the unit's comment says, applied to a
#    throw-away root (never to this host).
fake="$work/root"
mkdir -p "$fake/etc/omnirouter"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$fake/etc/passwd"
printf 'root:x:0:\n' >"$fake/etc/group"
cp "$stage/etc/omnirouter/omnirouter.yaml" "$fake/etc/omnirouter/"
if ! systemd-sysusers --root="$fake" "$stage/usr/lib/sysusers.d/omnirouter.conf" >"$work/sysusers.log" 2>&1 ||
	! grep -q '^omnirouter:' "$fake/etc/passwd" || ! grep -q '^omnirouter:' "$fake/etc/group"; then
	cat "$work/sysusers.log" >&2
	echo "FAIL: sysusers.d/omnirouter.conf did not create the omnirouter user and group" >&2
	failures=$((failures + 1))
else
	echo "ok: sysusers.d/omnirouter.conf creates user and group omnirouter"
	gid=$(awk -F: '$1 == "omnirouter" { print $3 }' "$fake/etc/group")
	if systemd-tmpfiles --root="$fake" --create "$stage/usr/lib/tmpfiles.d/omnirouter.conf" \
		>"$work/tmpfiles.log" 2>&1 &&
		[[ "$(stat -c '%a %u %g' "$fake/etc/omnirouter/omnirouter.yaml")" == "640 0 $gid" ]] &&
		[[ "$(stat -c '%a %u %g' "$fake/etc/omnirouter")" == "750 0 $gid" ]]; then
		echo "ok: tmpfiles.d/omnirouter.conf makes the config 0640 root:omnirouter"
	else
		cat "$work/tmpfiles.log" >&2
		stat -c '%n %a %u %g' "$fake/etc/omnirouter" "$fake/etc/omnirouter/omnirouter.yaml" >&2
		echo "FAIL: tmpfiles.d/omnirouter.conf" >&2
		failures=$((failures + 1))
	fi
fi

if ((failures)); then
	echo "test_systemd: $failures check(s) failed" >&2
	exit 1
fi
echo "test_systemd: all checks passed"
