# dpyfs — common tasks. `make test` is what CI runs.
CARGO ?= cargo
DATA ?= ./dpyfs-data

.PHONY: help build release test test-tls raft-sim fuzz test-deps lint fmt run bench bench-quick bench-boards cross cross-test clean

# Every target with the line after its `##`; `make` alone prints the same.
help: ## this list
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /\1\t/' | \
	  awk -F'\t' '{printf "  make %-12s %s\n", $$1, $$2}'

build: ## debug build of the binaries (target/debug/)
	$(CARGO) build --bins

release: ## release build of the binaries (target/release/)
	$(CARGO) build --release --bins

# The whole test suite: formatting, lints, unit and integration tests (real binaries on
# 127.0.0.1 with temporary directories).
test: test-deps ## installs what the tests run if missing (test-deps), then fmt, clippy, cargo test
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test
	$(CARGO) test -p tiny_http --lib
	$(MAKE) test-tls

# A subset of the director, store, repair and tools suites again with every cluster on
# HTTPS (stores with mutual TLS, the director verifying them, the tools given the test CA by
# DPYFS_CA); tests/tls.rs and the s3_clients https_* tests cover the rest of TLS in the
# plain run. The store tests left out send raw bytes on a plain socket or use their own
# plain ureq call.
TLS_SUBSET_DIRECTOR = round_trips_overwrite_and_delete listing_with_prefix_delimiter_and_pages \
	ranges_at_chunk_boundaries reads_survive_one_store_down_and_writes_need_n_live_stores \
	every_chunk_is_on_exactly_the_stores_placement_names edited_file_shares_most_chunks_with_the_original
TLS_SUBSET_STORE = round_trips_of_empty_small_and_large_chunks wrong_hash_is_refused_and_leaves_nothing \
	token_is_required_when_set corrupt_chunk_is_quarantined_on_read listing_is_sorted_and_pages_with_after \
	delete_answers_204_then_404 status_and_metrics_carry_real_figures disk_reserve_refuses_writes_with_507 \
	kill_9_during_uploads_loses_nothing_acknowledged put_over_a_rotted_copy_heals_it
TLS_SUBSET_REPAIR = wiped_store_is_refilled_by_repair drain_then_remove_never_loses_a_copy
TLS_SUBSET_TOOLS = put_and_get_files_stdin_and_trees_with_exit_statuses dpyfs_ls_rm_stat_status \
	recursive_get_and_ls_follow_listing_pages
# aws-cli (40 MiB multipart, a tree with a 3 MiB file, sync) and boto3 (empty objects,
# multipart, checksums: botocore frames uploads differently over TLS) against HTTPS.
TLS_SUBSET_S3_CLIENTS = aws_cli boto3_signed_checksums_when_supported
test-tls: ## a subset of the director, store, repair and tools tests with the cluster on HTTPS
	DPYFS_TEST_TLS=1 $(CARGO) test --test director -- --exact $(TLS_SUBSET_DIRECTOR)
	DPYFS_TEST_TLS=1 $(CARGO) test --test store -- --exact $(TLS_SUBSET_STORE)
	DPYFS_TEST_TLS=1 $(CARGO) test --test repair -- --exact $(TLS_SUBSET_REPAIR)
	DPYFS_TEST_TLS=1 $(CARGO) test --test tools -- --exact $(TLS_SUBSET_TOOLS)
	DPYFS_TEST_TLS=1 $(CARGO) test --test s3_clients -- --exact $(TLS_SUBSET_S3_CLIENTS)

# The Raft simulation over many more seeds than `make test` runs (3 000); RAFT_SEEDS=N for
# another count, RAFT_SEED=N to replay one (docs/ARCHITECTURE.md, "Consensus core").
raft-sim: ## the Raft simulation over 100 000 seeds (RAFT_SEEDS=N, RAFT_SEED=N replays one)
	RAFT_SEEDS=$${RAFT_SEEDS:-100000} $(CARGO) test --lib raft::sim::simulation -- --nocapture

# Every fuzz target (fuzz/, cargo-fuzz on nightly) for FUZZ_SECONDS each (default 60);
# prints executions per target into target/fuzz/summary.txt. FUZZ_TARGETS="xml ranges".
fuzz: ## the fuzz targets (cargo-fuzz, nightly), FUZZ_SECONDS each (default 60)
	bash fuzz/run.sh

# What the tests run besides our binaries (curl, jq, script, chromium, rclone, s3cmd, restic from
# apt; boto3 and aws-cli into target/s3-venv): installed when missing, as root; otherwise it
# prints the apt-get line to run.
test-deps: ## curl, jq, script, chromium, rclone, s3cmd, restic (apt); boto3, aws-cli (pip, target/s3-venv)
	bash tests/clients/install.sh

lint: ## cargo clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets -- -D warnings

fmt: ## cargo fmt --all
	$(CARGO) fmt --all

# A whole local cluster: a director on 127.0.0.1:7070 and three stores on 7071-7073, data
# and logs under $(DATA). Ctrl-C stops it; the next `make run` finds the data again.
run: release ## a local cluster: director on 127.0.0.1:7070, stores on 7071-7073, data in ./dpyfs-data
	./target/release/dpyfs dev --dir $(DATA)

# Measures a 3-store cluster (N=2) of the release binaries on 127.0.0.1 next to this
# machine's own limits (SHA-256, MD5, disk, durable creates, bare loopback HTTP), measured
# in the same run; prints a table and writes target/bench/latest.json. docs/PERFORMANCE.md
# explains the figures. bench-quick: smaller sizes, under two minutes.
bench: release ## full benchmarks next to this machine's limits (target/bench/latest.json)
	$(CARGO) bench --bench bench

bench-quick: release ## the benchmarks at smaller sizes, about two minutes
	BENCH_QUICK=1 $(CARGO) bench --bench bench

# The same binaries on a testbed of boards: director, three stores and the client each in
# a network namespace, links shaped to BOARDS_RATE (default 1gbit) with tc; every figure
# next to the link rate measured in the same run. Root only. BENCH_QUICK=1: a few minutes.
bench-boards: release ## the cluster on network-namespace boards with 1 Gbit/s links, as root (target/bench/boards.json)
	$(CARGO) bench --bench boards

# Static, stripped ARM binaries under target/cross/<arch>/, with SHA256SUMS and a tarball
# per arch. Needs cross/setup.sh once (apt, as root). CROSS_ARCHS=armv7 for one arch.
cross: ## static ARM binaries in target/cross/<arch>/ (needs cross/setup.sh once, as root)
	@for a in $${CROSS_ARCHS:-aarch64 armv7}; do cross/build.sh $$a || exit 1; done

# A subset of the integration suite (cross/README.md) with the ARM daemons under qemu.
cross-test: cross ## a subset of the integration tests with the ARM binaries under qemu
	@for a in $${CROSS_ARCHS:-aarch64 armv7}; do CARGO="$(CARGO)" cross/test.sh $$a || exit 1; done

clean: ## cargo clean
	$(CARGO) clean
