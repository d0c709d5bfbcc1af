#!/usr/bin/env bash
# The headless browser of the web console's tests: Debian's Chromium, driven by playwright-core (no browser download).
#
#   scripts/chromium.sh install    install Debian's chromium package if no chromium binary is found (quiet otherwise)
#   scripts/chromium.sh path       print the binary's path: CHROMIUM_PATH if set, else /usr/bin/chromium
#
# CHROMIUM_PATH names another binary (a Chrome or Chromium of your own); `install` then only checks it is there.
set -euo pipefail

die() { echo "chromium: $*" >&2; exit 1; }

DEFAULT_PATH=/usr/bin/chromium

binary() { echo "${CHROMIUM_PATH:-$DEFAULT_PATH}"; }

install_browser() {
  local bin
  bin="$(binary)"
  if [ -x "$bin" ]; then return 0; fi
  # A path of one's own is not something apt-get can put there.
  [ -z "${CHROMIUM_PATH:-}" ] || die "CHROMIUM_PATH=$CHROMIUM_PATH is not an executable file"
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || die "Chromium is not installed and this user cannot install it: apt-get install chromium (or set CHROMIUM_PATH)"
    sudo -n true 2>/dev/null || die "Chromium is not installed and sudo needs a password: sudo apt-get install chromium (or set CHROMIUM_PATH)"
    sudo=(sudo -n)
  fi
  echo "chromium: installing Debian's chromium (apt-get; the first time takes a few minutes)" >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends chromium >&2 \
    || die "apt-get install chromium failed"
  [ -x "$bin" ] || die "chromium installed, but there is no $bin"
  "$bin" --version >&2 || die "$bin --version failed"
}

print_path() {
  local bin
  bin="$(binary)"
  [ -x "$bin" ] || die "no chromium at $bin: run scripts/chromium.sh install (or set CHROMIUM_PATH)"
  echo "$bin"
}

case "${1:-}" in
  install) install_browser ;;
  path) print_path ;;
  *) die "usage: $0 install | path" ;;
esac
