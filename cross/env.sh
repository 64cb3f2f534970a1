#!/usr/bin/env bash
# The cross toolchain, in one place. Sourced by cross/build.sh and cross/test.sh as
#   . cross/env.sh ARCH          (ARCH = aarch64 | armv7)
# which sets TRIPLE, RUNNER, QEMU, CROSS_RUSTC and exports the cargo environment for that
# target; run as `cross/env.sh --print` it prints the tools it would use.
#
# CROSS_RUSTC (default /usr/bin/rustc, Debian's rustc-web) may be overridden, e.g. by a
# rustc that has the ARM standard libraries in its own sysroot.

cross_rustc=${CROSS_RUSTC:-/usr/bin/rustc}

# "1.85.0" -> 185 (major*100 + minor), for comparisons.
cross_rustc_minor() {
  "$cross_rustc" --version | awk '{split($2, v, "."); print v[1] * 100 + v[2]}'
}

cross_select() {
  case "$1" in
    aarch64)
      TRIPLE=aarch64-unknown-linux-gnu
      CROSS_CC=aarch64-linux-gnu-gcc
      QEMU=qemu-aarch64-static
      ;;
    armv7)
      TRIPLE=armv7-unknown-linux-gnueabihf
      CROSS_CC=arm-linux-gnueabihf-gcc
      QEMU=qemu-arm-static
      ;;
    *)
      echo "cross: unknown ARCH '$1' (aarch64 | armv7)" >&2
      return 2
      ;;
  esac
  local up
  up=$(tr 'a-z-' 'A-Z_' <<<"$TRIPLE")
  export RUSTC="$cross_rustc"
  export CARGO_TARGET_${up}_LINKER="$CROSS_CC"
  # C code in build scripts (none today) would use the same compiler.
  export CC_${TRIPLE//-/_}="$CROSS_CC"
  local flags="-C target-feature=+crt-static"
  export CARGO_TARGET_${up}_RUSTFLAGS="$flags"
  RUNNER="$QEMU"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  # Executed, not sourced.
  set -euo pipefail
  [ "${1:-}" = "--print" ] || { echo "usage: cross/env.sh --print  (or source it with ARCH)" >&2; exit 2; }
  echo "cross rustc: $cross_rustc: $("$cross_rustc" --version)"
  for a in aarch64 armv7; do
    cross_select "$a"
    libdir=$("$cross_rustc" --print target-libdir --target "$TRIPLE")
    if ls "$libdir"/libstd-*.rlib >/dev/null 2>&1; then std="std in $libdir"; else std="NO std in $libdir"; fi
    echo "$a: $TRIPLE, linker $(command -v "$CROSS_CC" || echo "$CROSS_CC MISSING"), runner $(command -v "$QEMU" || echo "$QEMU MISSING"), $std"
  done
else
  cross_select "${1:?cross/env.sh: ARCH (aarch64 | armv7) expected}"
fi
