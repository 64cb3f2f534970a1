#!/usr/bin/env bash
# Runs the cross subset of the integration suite against the ARM binaries of one arch:
#   cross/test.sh aarch64|armv7 [more arguments for the test harness]
# The test harness is built and run natively with the usual cargo (and rustup's rustc);
# only the daemons it starts are ARM, each under qemu-user (DPYFS_BIN_DIR, DPYFS_RUNNER:
# tests/common/mod.rs). The subset, and why these tests, is in cross/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:?usage: cross/test.sh aarch64|armv7 [test harness args]}
shift
# Only the runner's name comes from env.sh; the native cargo must not see its RUSTC.
qemu=$(. cross/env.sh "$arch" && echo "$QEMU")
bin_dir=$PWD/target/cross/$arch
command -v "$qemu" >/dev/null || { echo "cross/test.sh: $qemu missing: run cross/setup.sh" >&2; exit 1; }
for b in dpyfs-store dpyfs-director; do
  [ -x "$bin_dir/$b" ] || { echo "cross/test.sh: $bin_dir/$b missing: run make cross" >&2; exit 1; }
done

# Keep in step with cross/README.md.
store_tests=(
  round_trips_of_empty_small_and_large_chunks
  corrupt_chunk_is_quarantined_on_read
)
director_tests=(
  round_trips_overwrite_and_delete
  listing_with_prefix_delimiter_and_pages
  reads_survive_one_store_down_and_writes_need_n_live_stores
  curl_uploads_plain_and_chunked_bodies
  ranges_at_chunk_boundaries
)
# Every test of tests/names.rs: the static binaries' own resolver (hosts file, DNS, mDNS).
names_tests=(
  names_from_a_hosts_file
  names_from_a_dns_server_on_loopback
  local_names_by_mdns_in_a_network_namespace
)
# Opt-in, long (see cross/README.md): CROSS_TEST_LARGE=1 adds the > 4 GiB object test,
# once tests/large_object.rs exists.
large=() large_tests=()
if [ "${CROSS_TEST_LARGE:-0}" = 1 ] && [ -f tests/large_object.rs ]; then
  large=(--test large_object)
  large_tests=(object_larger_than_4_gib_round_trips content_length_over_4_gib_is_never_stored_short --include-ignored)
fi

echo "cross/test.sh: $arch: daemons from $bin_dir under $qemu"
start=$(date +%s)
DPYFS_BIN_DIR=$bin_dir DPYFS_RUNNER=$qemu \
  "${CARGO:-cargo}" test --test store --test director --test names "${large[@]}" -- \
  --exact "${store_tests[@]}" "${director_tests[@]}" "${names_tests[@]}" "${large_tests[@]}" "$@"
echo "cross/test.sh: $arch passed in $(( $(date +%s) - start )) s"
