#!/usr/bin/env bash
# deps.sh - install the Debian packages omnirouter needs, and only the missing ones.
#
#   scripts/deps.sh           build + run packages
#   scripts/deps.sh --test    build + run + test packages (make test, CI)
#   scripts/deps.sh --dev     build + run + developer tools (clang-format for make format)
#   scripts/deps.sh --list    print the packages that would be checked, install nothing
#
# Idempotent: every package is checked with dpkg-query; when all are installed it changes
# nothing and does not touch the network. Otherwise it runs `apt-get update` once, then
# `apt-get install -y --no-install-recommends` with exactly the missing packages (printed first),
# through sudo when not root, and checks afterwards that each one really is installed.
# Targets Debian 12 (bookworm). Any failure exits non-zero with a message on stderr.
#
# Note: installing redis-server starts the distribution's Redis on 127.0.0.1:6379, which is
# what config/omnirouter.yaml points at by default.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# Build + run. libwebsockets-evlib-uv is needed at run time too (lws loads the libuv event
# loop as a plugin; without it lws_create_context fails), as is redis-server.
BUILD_PKGS=(
	build-essential cmake pkg-config clang libclang-rt-14-dev
	libzmq3-dev libwebsockets-dev libwebsockets-evlib-uv libhiredis-dev libmsgpack-dev
	libuv1-dev libssl-dev libsystemd-dev libyaml-dev libcjson-dev libcmocka-dev libjemalloc-dev
	redis-server
)
# Test only: python3 + websockets drive the integration tests, systemd provides
# systemd-analyze (tests/integration/test_systemd.sh), curl and procps (pgrep, ps) for tests.
# chromium is the browser of tests/integration/test_browser.py (/usr/bin/chromium, driven by
# playwright-core that npm installs from tests/browser/package-lock.json; no browser download).
# nodejs runs it. npm is not listed: Debian's npm conflicts with a nodejs that bundles npm
# (NodeSource's, as on the CI machines); the test says so when npm is missing.
TEST_PKGS=(python3 python3-websockets systemd curl procps openssl chromium nodejs)
# Developer tools: make format / make format-check.
DEV_PKGS=(clang-format)

prog=${0##*/}
die() {
	printf '%s: ERROR: %s\n' "$prog" "$*" >&2
	exit 1
}
usage() {
	sed -n '2,14s/^# \{0,1\}//p' "$0"
}

want_test=0
want_dev=0
list_only=0
for arg in "$@"; do
	case $arg in
	--test) want_test=1 ;;
	--dev) want_dev=1 ;;
	--list) list_only=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		die "unknown argument: $arg"
		;;
	esac
done

pkgs=("${BUILD_PKGS[@]}")
if ((want_test)); then pkgs+=("${TEST_PKGS[@]}"); fi
if ((want_dev)); then pkgs+=("${DEV_PKGS[@]}"); fi

if ((list_only)); then
	printf '%s\n' "${pkgs[@]}"
	exit 0
fi

command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found: this script needs Debian (12/bookworm)"
command -v apt-get >/dev/null 2>&1 || die "apt-get not found: this script needs Debian (12/bookworm)"

# installed PKG: true when dpkg reports the package fully installed ("install ok installed";
# a package that is only unpacked, half-configured or removed with its config left counts
# as missing). A Multi-Arch: same package prints one status per architecture.
installed() {
	dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null | grep -qx installed
}

missing=()
for p in "${pkgs[@]}"; do
	installed "$p" || missing+=("$p")
done

if ((${#missing[@]} == 0)); then
	echo "$prog: all ${#pkgs[@]} packages already installed, nothing to do"
	exit 0
fi

sudo=()
if ((EUID != 0)); then
	command -v sudo >/dev/null 2>&1 ||
		die "not root and sudo is not installed; as root run: apt-get install -y --no-install-recommends ${missing[*]}"
	sudo=(sudo)
fi

# Wait for the dpkg lock instead of failing at once: a fresh cloud machine often runs
# unattended-upgrades right after boot.
apt_opts=(-o DPkg::Lock::Timeout=300)

echo "$prog: missing ${#missing[@]} of ${#pkgs[@]} packages; installing: ${missing[*]}"
echo "$prog: + apt-get update"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update ||
	die "apt-get update failed"
echo "$prog: + apt-get install -y --no-install-recommends ${missing[*]}"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
	apt-get "${apt_opts[@]}" install -y --no-install-recommends "${missing[@]}" ||
	die "apt-get install failed for: ${missing[*]}"

still=()
for p in "${missing[@]}"; do
	installed "$p" || still+=("$p")
done
((${#still[@]} == 0)) || die "still not installed after apt-get: ${still[*]}"

for p in "${missing[@]}"; do
	printf '%s: installed %s %s\n' "$prog" "$p" "$(dpkg-query -W -f='${Version}\n' "$p" | head -n1)"
done
