#!/usr/bin/env bash
# test_install.sh - `cmake --install` of the build tree into a staging directory (DESTDIR),
# as a distribution package or `make install PREFIX=/usr` would do, and checks where every
# file lands. Uses the targets already built in $OMR_BUILD_DIR; builds nothing.
#
# For --prefix /usr: usr/sbin/omnirouterd, usr/bin/omnirouterctl, etc/omnirouter/omnirouter.yaml
# (not usr/etc), usr/share/omnirouter/web/ (same files as web/), the unit in
# usr/lib/systemd/system, sysusers.d/tmpfiles.d snippets in usr/lib. Also: the unit's paths
# exist in the staged tree; a re-install keeps a site-modified config; --prefix /usr/local
# rewrites the unit's paths.
set -euo pipefail

: "${OMR_BUILD_DIR:?OMR_BUILD_DIR must name the CMake build directory}"
: "${OMR_SOURCE_DIR:?OMR_SOURCE_DIR must name the source directory}"

failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
ok() {
	echo "ok: $*"
}

stage=$(mktemp -d "${TMPDIR:-/tmp}/omr-install.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# install PREFIX DESTDIR: cmake --install, output kept for the log on failure.
install_to() {
	local log
	log=$(mktemp "$stage/log.XXXXXX")
	if ! DESTDIR="$2" cmake --install "$OMR_BUILD_DIR" --prefix "$1" >"$log" 2>&1; then
		cat "$log" >&2
		echo "FAIL: cmake --install $OMR_BUILD_DIR --prefix $1 (DESTDIR=$2) failed" >&2
		exit 1
	fi
	cat "$log"
}

root="$stage/usr-root"
mkdir -p "$root"
echo "# cmake --install $OMR_BUILD_DIR --prefix /usr with DESTDIR=$root"
install_to /usr "$root"

check_exec() {
	if [[ -f "$root/$1" && -x "$root/$1" ]]; then ok "$1 (executable)"; else fail "$1 missing or not executable"; fi
}
check_file() {
	if [[ -f "$root/$1" && -s "$root/$1" ]]; then ok "$1"; else fail "$1 missing or empty"; fi
}

check_exec usr/sbin/omnirouterd
check_exec usr/bin/omnirouterctl
check_file etc/omnirouter/omnirouter.yaml
if [[ -e "$root/usr/etc" ]]; then
	fail "usr/etc exists: the config must go to /etc for prefix /usr"
fi
if [[ -f "$root/etc/omnirouter/omnirouter.yaml" ]] &&
	! cmp -s "$root/etc/omnirouter/omnirouter.yaml" "$OMR_SOURCE_DIR/config/omnirouter.yaml"; then
	fail "etc/omnirouter/omnirouter.yaml differs from config/omnirouter.yaml"
fi

if [[ -d "$root/usr/share/omnirouter/web" ]]; then
	ok "usr/share/omnirouter/web/"
	want=$(cd "$OMR_SOURCE_DIR/web" && find . -type f | sort)
	have=$(cd "$root/usr/share/omnirouter/web" && find . -type f | sort)
	if [[ "$want" == "$have" ]]; then
		ok "web/ files installed: $(echo "$have" | grep -c . || true)"
	else
		fail "usr/share/omnirouter/web/ does not match web/:"
		diff <(echo "$want") <(echo "$have") >&2 || true
	fi
else
	fail "usr/share/omnirouter/web/ missing"
fi

unit="$root/usr/lib/systemd/system/omnirouterd.service"
check_file usr/lib/systemd/system/omnirouterd.service
check_file usr/lib/sysusers.d/omnirouter.conf
check_file usr/lib/tmpfiles.d/omnirouter.conf

# The unit must point at what was installed.
if [[ -f "$unit" ]]; then
	exec_line=$(sed -n 's/^ExecStart=//p' "$unit")
	read -r exe _ <<<"$exec_line"
	conf=$(sed -n 's/.*[[:space:]]-c[[:space:]]\{1,\}\([^[:space:]]*\).*/\1/p' <<<"$exec_line")
	workdir=$(sed -n 's/^WorkingDirectory=//p' "$unit")
	[[ "$exe" == /usr/sbin/omnirouterd ]] || fail "unit ExecStart binary is '$exe', want /usr/sbin/omnirouterd"
	if [[ -x "$root$exe" ]]; then
		ok "unit ExecStart $exe is installed"
	else
		fail "unit ExecStart $exe not installed"
	fi
	if [[ -n "$conf" && -f "$root$conf" ]]; then
		ok "unit config $conf is installed"
	else
		fail "unit config '$conf' not installed"
	fi
	if [[ -n "$workdir" && -d "$root$workdir/web" ]]; then
		ok "unit WorkingDirectory $workdir has web/"
	else
		fail "unit WorkingDirectory '$workdir' has no web/ (static_dir \"web\" is relative to it)"
	fi
fi

# Re-install over a site-edited config: the edit survives, the shipped one lands beside it.
if [[ -f "$root/etc/omnirouter/omnirouter.yaml" ]]; then
	echo "# site edit" >>"$root/etc/omnirouter/omnirouter.yaml"
	install_to /usr "$root" >/dev/null
	if tail -n1 "$root/etc/omnirouter/omnirouter.yaml" | grep -qx '# site edit' &&
		cmp -s "$root/etc/omnirouter/omnirouter.yaml.new" "$OMR_SOURCE_DIR/config/omnirouter.yaml"; then
		ok "re-install kept the edited config and wrote omnirouter.yaml.new"
	else
		fail "re-install overwrote the edited config or did not write omnirouter.yaml.new"
	fi
fi

# Another prefix: the unit follows the files.
lroot="$stage/local-root"
mkdir -p "$lroot"
install_to /usr/local "$lroot" >/dev/null
lunit="$lroot/usr/local/lib/systemd/system/omnirouterd.service"
if [[ -f "$lunit" ]] &&
	grep -qx 'ExecStart=/usr/local/sbin/omnirouterd -c /usr/local/etc/omnirouter/omnirouter.yaml' "$lunit" &&
	grep -qx 'WorkingDirectory=/usr/local/share/omnirouter' "$lunit" &&
	[[ -x "$lroot/usr/local/sbin/omnirouterd" && -f "$lroot/usr/local/etc/omnirouter/omnirouter.yaml" ]]; then
	ok "--prefix /usr/local: unit paths rewritten, config in usr/local/etc/omnirouter"
else
	fail "--prefix /usr/local: unit or files not where expected"
	[[ -f "$lunit" ]] && grep -E '^(ExecStart|WorkingDirectory)=' "$lunit" >&2
	(cd "$lroot" && find . -type f | sort) >&2
fi

if ((failures)); then
	echo "test_install: $failures check(s) failed" >&2
	exit 1
fi
echo "test_install: all checks passed"
