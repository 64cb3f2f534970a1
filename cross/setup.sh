#!/usr/bin/env bash
# Installs what `make cross` and `make cross-test` need on a Debian (bookworm or later)
# amd64 machine, as root: Debian's rustc (rustc-web) with its ARM standard libraries, the
# ARM cross gcc (used as linker) and qemu-user-static. Idempotent: when everything is
# already there, in one version, it runs no apt command at all.
#
#   cross/setup.sh            install (or check) the toolchain
#   cross/setup.sh --choose   only print the rustc-web version it would pin, from the
#                             package indexes as they are (no update, no install)
#
# Why Debian's rustc: rustup's toolchain here has no ARM standard library and none can be
# downloaded; Debian ships one as libstd-rust-web-dev:<arch>, matching its rustc-web.
#
# Why a pinned version: rustc-web and each libstd-rust-web-dev:<arch> must be the very same
# version (the compiler refuses a standard library built by another). A mirror caught
# mid-sync can offer a newer rustc-web for amd64 than for arm64/armhf (seen: 1.96 against
# 1.85 while the security index for armhf was being rewritten), and apt then gives up
# with "held broken packages". So the setup takes the newest version that all three
# architectures offer and installs exactly that one.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# The packages that must share one version: the compiler and a standard library per arch.
rust_pkgs=(rustc-web libstd-rust-web-dev:amd64 libstd-rust-web-dev:arm64 libstd-rust-web-dev:armhf)
other_pkgs=(
  gcc-aarch64-linux-gnu
  gcc-arm-linux-gnueabihf
  libc6-dev-arm64-cross
  libc6-dev-armhf-cross
  qemu-user-static
  file
)
APT_UPDATE_TRIES=4

# Prints the versions apt offers for package $1, one a line.
offered() {
  apt-cache madison "$1" 2>/dev/null | awk -F'|' '{gsub(/ /, "", $2); if ($2 != "") print $2}' | sort -u
}

# Prints the newest version offered for every package of rust_pkgs, or nothing.
common_version() {
  local common p
  common=$(offered "${rust_pkgs[0]}")
  for p in "${rust_pkgs[@]:1}"; do
    common=$(comm -12 <(sort -u <<<"$common") <(offered "$p"))
  done
  local best="" v
  while read -r v; do
    [ -n "$v" ] || continue
    if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
  done <<<"$common"
  printf '%s' "$best"
}

# Prints, for a failed choice, what each architecture offers.
explain_offers() {
  local p
  for p in "${rust_pkgs[@]}"; do
    echo "  $p: $(offered "$p" | tr '\n' ' ')" >&2
  done
}

installed_version() {
  local st
  st=$(dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null || true)
  case "$st" in "install ok installed "*) printf '%s' "${st#install ok installed }" ;; esac
}

if [ "${1:-}" = "--choose" ]; then
  v=$(common_version)
  [ -n "$v" ] || { echo "cross/setup.sh: no rustc-web version is offered for every architecture:" >&2; explain_offers; exit 1; }
  echo "$v"
  exit 0
fi

# What is missing: any other package, or the rust packages not all in one version.
missing=()
for p in "${other_pkgs[@]}"; do
  [ -n "$(installed_version "$p")" ] || missing+=("$p")
done
have=""
rust_ok=1
for p in "${rust_pkgs[@]}"; do
  v=$(installed_version "$p")
  if [ -z "$v" ] || { [ -n "$have" ] && [ "$v" != "$have" ]; }; then rust_ok=0; fi
  [ -n "$have" ] || have=$v
done

if [ ${#missing[@]} -eq 0 ] && [ $rust_ok -eq 1 ]; then
  echo "cross/setup.sh: everything is installed (rustc-web $have for amd64, arm64, armhf; ${other_pkgs[*]})"
else
  foreign=$(dpkg --print-foreign-architectures)
  for a in arm64 armhf; do
    grep -qx "$a" <<<"$foreign" || $SUDO dpkg --add-architecture "$a"
  done
  # Third-party sources (without ARM indexes, or unreachable) only warn, and so does a
  # Debian index caught mid-sync ("File has unexpected size"): apt keeps the old list.
  # A few tries usually get a consistent set; the version choice below copes when not.
  for try in $(seq 1 $APT_UPDATE_TRIES); do
    if $SUDO apt-get update -q; then break; fi
    echo "cross/setup.sh: apt-get update reported errors (try $try of $APT_UPDATE_TRIES)" >&2
    [ "$try" -eq $APT_UPDATE_TRIES ] || sleep $((try * 10))
  done
  v=$(common_version)
  if [ -z "$v" ]; then
    echo "cross/setup.sh: no rustc-web version is offered for amd64, arm64 and armhf alike:" >&2
    explain_offers
    echo "cross/setup.sh: the package indexes are incomplete; run 'apt-get update' and then cross/setup.sh again" >&2
    exit 1
  fi
  echo "cross/setup.sh: pinning rustc-web $v (the newest version every architecture offers)"
  pinned=()
  for p in "${rust_pkgs[@]}"; do pinned+=("$p=$v"); done
  # --allow-downgrades: a machine that got a newer, unmatched rustc-web earlier is brought
  # back into step.
  $SUDO apt-get install -y -q --no-install-recommends --allow-downgrades "${pinned[@]}" "${missing[@]}"
fi

# Report the toolchain that cross/build.sh will use.
"$(dirname "$0")/env.sh" --print
