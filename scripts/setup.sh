#!/usr/bin/env bash
# Set up everything fleetlearn needs on this machine: a virtualenv with the package (and its
# test tools) in .venv, the mosquitto broker, and headless Chromium with its driver (the live
# page's browser test). Installs what is missing with apt-get when
# we are root; otherwise says in one line what to install. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

say() { printf 'setup: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }
apt_updated=0
apt_install() {
    is_root || return 1
    command -v apt-get >/dev/null || return 1
    if [ "$apt_updated" -eq 0 ]; then
        say "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        apt_updated=1
    fi
    say "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# 1. Python >= 3.11 with venv
command -v "$PYTHON" >/dev/null || apt_install python3 python3-venv \
    || die "python3 is missing: install Python 3.11+ (sudo apt-get install python3 python3-venv)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || die "fleetlearn needs Python 3.11+, found $("$PYTHON" --version 2>&1)"
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    apt_install python3-venv || die "python3 has no venv module: sudo apt-get install python3-venv"
fi

# 2. The virtualenv with fleetlearn, rebuilt when pyproject.toml changes
stamp="$VENV/.installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    say "installing fleetlearn into $VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -e '.[dev]'
    touch "$stamp"
fi

# 3. The broker
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
    apt_install mosquitto mosquitto-clients \
        || die "mosquitto is missing: sudo apt-get install mosquitto mosquitto-clients"
fi
# mosquitto_passwd (package mosquitto) hashes the secured broker's passwords; the secured
# broker's tests speak to it with mosquitto_pub and mosquitto_sub (mosquitto-clients)
if ! command -v mosquitto_pub >/dev/null || ! command -v mosquitto_sub >/dev/null; then
    apt_install mosquitto-clients \
        || die "mosquitto_pub/mosquitto_sub are missing: sudo apt-get install mosquitto-clients"
fi
# ip and tc (iproute2): the multi-site tests put each site broker in a network namespace
# joined by a veth pair whose bandwidth tc limits; without them those tests skip
has_tool() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
if ! has_tool ip || ! has_tool tc; then
    apt_install iproute2 || say "iproute2 is missing (ip, tc): the multi-site tests will skip"
fi
command -v mosquitto_passwd >/dev/null \
    || die "mosquitto_passwd is missing: sudo apt-get install mosquitto"
# 4. A real browser for the live page's test (tests/integration/test_dashboard.py): Debian's
# chromium and its chromedriver, driven by selenium
if ! command -v chromium >/dev/null || [ ! -x /usr/bin/chromedriver ]; then
    apt_install chromium chromium-driver \
        || die "chromium/chromedriver are missing: sudo apt-get install chromium chromium-driver"
fi
say "ready: $("$VENV/bin/fleetlearn" --version 2>/dev/null || echo fleetlearn), $(/usr/sbin/mosquitto -h 2>/dev/null | head -1 || mosquitto -h | head -1)"
