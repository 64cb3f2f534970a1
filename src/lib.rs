//! dpyfs: a distributed file system for a handful of small machines.
//!
//! Module map (see docs/ARCHITECTURE.md for what each module must not know):
//! - `hash`, `fsutil`, `sys`: leaf helpers (SHA-256 names, durable writes, POSIX calls).
//! - `http`: the only module that touches tiny_http types: the accept loop and the
//!   socket-free `Request`/`Response` handlers are written against.
//! - `store`: the storage daemon (a content-addressed chunk store).
//! - `chunker`: content-defined chunking (FastCDC).
//! - `sigv4`: AWS Signature Version 4 (pure functions; the director verifies, tools sign).
//! - `director`: the cluster's front door, in rooms: `s3` (the S3 front), `meta` (journal,
//!   records, index), `data` (placement, scatter/gather, store calls), `upkeep` (repair, GC,
//!   fsck, recover) and `admin`.
//! - `s3`: what the director, the tools and `dpyfs admin` share about S3 (names, keys
//!   file, XML); `status_page`: the status page and the store summaries.
//! - `resolve`: host names to addresses (/etc/hosts, DNS, mDNS) for every HTTP client.
//! - `client`, `tools`: the client side (`dpyfs-put`, `dpyfs-get`, `dpyfs ls/rm/stat/status`).
//! - `raft`: Raft consensus as a pure state machine, for redundant directors (not wired in yet).
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod admin;
pub mod checksum;
pub mod chunker;
pub mod cli;
pub mod client;
pub mod dev;
pub mod director;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod hash;
pub mod http;
pub mod human;
pub mod logring;
pub mod metrics;
pub mod mount;
pub mod raft;
pub mod resolve;
pub mod s3;
pub mod sigv4;
pub mod status_page;
pub mod store;
pub mod sys;
pub mod timefmt;
pub mod tls;
pub mod tools;

/// Version of this build, reported by `/status` and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
