#!/usr/bin/env bash
# Builds fully static, stripped release binaries of every [[bin]] for one ARM target:
#   cross/build.sh aarch64|armv7
# -> target/cross/<arch>/{dpyfs-store,dpyfs-director,dpyfs,...,SHA256SUMS}
#    target/cross/dpyfs-<version>-<arch>.tar.gz
# Needs what cross/setup.sh installs. Cargo's own files go to target/cross/cargo/ (kept
# apart from the native target/ so the two compilers never share a build lock).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
arch=${1:?usage: cross/build.sh aarch64|armv7}
. cross/env.sh "$arch"

for tool in "$RUSTC" "$CROSS_CC" cargo sha256sum tar gzip file; do
  command -v "$tool" >/dev/null || { echo "cross/build.sh: $tool missing: run cross/setup.sh" >&2; exit 1; }
done
libdir=$("$RUSTC" --print target-libdir --target "$TRIPLE")
ls "$libdir"/libstd-*.rlib >/dev/null 2>&1 || {
  echo "cross/build.sh: $RUSTC has no standard library for $TRIPLE: run cross/setup.sh" >&2; exit 1; }

cargo_dir=${CROSS_TARGET_DIR:-$root/target/cross/cargo}
out=$root/target/cross/$arch
version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' Cargo.toml | head -n 1)
mkdir -p "$root/target/cross"

echo "cross/build.sh: $arch ($TRIPLE) with $("$RUSTC" --version)"
start=$(date +%s)
# The executables cargo built, read off its JSON messages (so every [[bin]] is included).
json=$(mktemp)
trap 'rm -f "$json"' EXIT
if ! cargo build --release --bins --locked --target "$TRIPLE" \
  --target-dir "$cargo_dir" --message-format=json-render-diagnostics >"$json"; then
  # The usual cause on a machine that built before: rustc-web and the ARM standard
  # libraries no longer of one version (E0514/E0463 above). setup.sh pins them together.
  echo "cross/build.sh: the $arch build failed; if the errors above are about 'std' or 'core', run: cross/setup.sh" >&2
  exit 1
fi
mapfile -t exes < <(grep -o '"executable":"[^"]*"' "$json" | sed 's/^"executable":"//; s/"$//')
[ ${#exes[@]} -gt 0 ] || { echo "cross/build.sh: cargo built no executable" >&2; exit 1; }

rm -rf "$out"
mkdir -p "$out"
names=()
for exe in "${exes[@]}"; do
  name=$(basename "$exe")
  cp "$exe" "$out/$name"
  names+=("$name")
done
IFS=$'\n' names=($(sort <<<"${names[*]}")); unset IFS

case "$arch" in
  aarch64) want_arch="ARM aarch64" ;;
  armv7) want_arch="ARM, EABI5" ;;
esac
fail=0
for n in "${names[@]}"; do
  f=$(file -b "$out/$n")
  for want in "$want_arch" "statically linked" "stripped"; do
    case "$f" in *"$want"*) ;; *) echo "cross/build.sh: $n is not '$want': $f" >&2; fail=1 ;; esac
  done
  case "$f" in *"not stripped"*) echo "cross/build.sh: $n is not stripped" >&2; fail=1 ;; esac
  # A static binary must start under qemu without any ARM library installed.
  if command -v "$QEMU" >/dev/null; then
    "$QEMU" "$out/$n" --help >/dev/null 2>&1 || {
      echo "cross/build.sh: '$QEMU $n --help' failed" >&2; fail=1; }
  fi
done
[ $fail -eq 0 ] || exit 1

# The example systemd units travel with the binaries (README: "A real cluster").
units=()
for u in "$root"/docs/systemd/*.service; do
  cp "$u" "$out/"
  units+=("$(basename "$u")")
done
(cd "$out" && sha256sum "${names[@]}" "${units[@]}" >SHA256SUMS)

# A reproducible tarball: fixed order, owner and time (the last commit's, else 0).
epoch=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || echo 0)}
dist=dpyfs-$version-$arch
tarball=$root/target/cross/$dist.tar.gz
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" \
  --transform "s,^\.,$dist," -C "$out" -cf - ./SHA256SUMS "${names[@]/#/./}" "${units[@]/#/./}" |
  gzip -n -9 >"$tarball"

echo "cross/build.sh: $arch done in $(( $(date +%s) - start )) s:"
for n in "${names[@]}"; do
  printf '  %-16s %9d bytes  %s\n' "$n" "$(stat -c %s "$out/$n")" "$(file -b "$out/$n" | cut -d, -f1-2)"
done
echo "  $tarball"
