#!/usr/bin/env bash
# Installs what `make cross` and `make cross-test` need on a Debian (bookworm or later)
# amd64 machine, as root: Debian's rustc (rustc-web) with its ARM standard libraries, the
# ARM cross gcc (used as linker) and qemu-user-static. Idempotent: when everything is
# already there it runs no apt command at all.
#
# Why Debian's rustc: rustup's toolchain here has no ARM standard library and none can be
# downloaded; Debian ships one as libstd-rust-web-dev:<arch>, matching its rustc-web.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

pkgs=(
  rustc-web
  libstd-rust-web-dev:arm64
  libstd-rust-web-dev:armhf
  gcc-aarch64-linux-gnu
  gcc-arm-linux-gnueabihf
  libc6-dev-arm64-cross
  libc6-dev-armhf-cross
  qemu-user-static
  file
)

# A package is present when dpkg says "install ok installed" for it.
missing=()
for p in "${pkgs[@]}"; do
  st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$st" = "install ok installed" ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "cross/setup.sh: everything is installed (${pkgs[*]})"
else
  echo "cross/setup.sh: installing ${missing[*]}"
  foreign=$(dpkg --print-foreign-architectures)
  for a in arm64 armhf; do
    grep -qx "$a" <<<"$foreign" || $SUDO dpkg --add-architecture "$a"
  done
  # Third-party sources (without ARM indexes, or unreachable) only warn; the Debian
  # indexes are what matter, and the install below fails loudly if they are missing.
  # (Seen here: a Debian mirror mid-sync failed one armhf index; a second try fixes that.)
  $SUDO apt-get update -q || { sleep 10; $SUDO apt-get update -q; } ||
    echo "cross/setup.sh: apt-get update reported errors; trying the install anyway" >&2
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Report the toolchain that cross/build.sh will use.
"$(dirname "$0")/env.sh" --print
