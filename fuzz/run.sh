#!/usr/bin/env bash
# `make fuzz`: runs every fuzz target for FUZZ_SECONDS (default 60) with cargo-fuzz
# (libFuzzer, AddressSanitizer) on the nightly toolchain, starting from the seeds in
# fuzz/seeds/<target>/ and the corpus of earlier runs in fuzz/corpus/<target>/ (not kept in
# git), then prints executions per target. A crash stops the run with the input saved under
# fuzz/artifacts/<target>/; it becomes a regression test in src/fuzzing.rs.
#   FUZZ_TARGETS="xml ranges" FUZZ_SECONDS=600 make fuzz
set -euo pipefail
cd "$(dirname "$0")"
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-journal snapshot sigv4 aws_chunked xml ranges http_head manifest form acl}
command -v cargo-fuzz >/dev/null || {
  echo "fuzz/run.sh: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2; exit 1; }
rustup run nightly rustc --version >/dev/null 2>&1 || {
  echo "fuzz/run.sh: the nightly toolchain is missing: rustup toolchain install nightly" >&2; exit 1; }
mkdir -p ../target/fuzz
summary=../target/fuzz/summary.txt
: >"$summary"
for t in $targets; do
  mkdir -p "corpus/$t"
  log=../target/fuzz/$t.log
  echo "fuzz: $t for ${seconds}s" >&2
  if ! cargo +nightly fuzz run "$t" "corpus/$t" "seeds/$t" -- \
      -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=1024 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz: $t FAILED; the input is under fuzz/artifacts/$t/, the log in target/fuzz/$t.log" >&2
    exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
  printf '%-12s %12s executions in %ss, coverage %s, no crash\n' "$t" "${execs:-?}" "$seconds" "${cov:-?}" | tee -a "$summary"
done
