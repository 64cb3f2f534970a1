//! `dpyfs-director`: the cluster's front door. Parses flags into a `DirectorConfig` and
//! runs it.

use dpyfs::chunker::Chunking;
#[path = "common/daemon.rs"]
mod daemon;

use dpyfs::cli;
use dpyfs::director::{self, DirectorConfig, LIFECYCLE_DAY_ENV, Replication};
use dpyfs::http::is_loopback;
use dpyfs::human::parse_size;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const PROGRAM: &str = "dpyfs-director";

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.reqopt(
        "l",
        "listen",
        "address to listen on, e.g. 127.0.0.1:7070",
        "ADDR",
    );
    o.reqopt(
        "d",
        "data",
        "data directory for the journal (created if missing)",
        "DIR",
    );
    o.optmulti(
        "s",
        "store",
        "a store's URL, e.g. http://127.0.0.1:7071 (repeat)",
        "URL",
    );
    o.optopt("r", "replicas", "copies of every chunk (default 2)", "N");
    o.optopt(
        "",
        "chunking",
        "cdc (content-defined, default) or fixed",
        "KIND",
    );
    o.optopt(
        "",
        "chunk-size",
        "chunk size for --chunking fixed (default 1M)",
        "BYTES",
    );
    o.optopt(
        "",
        "replication",
        "chain (each store forwards to the next, default) or fanout",
        "MODE",
    );
    o.optopt(
        "",
        "store-token-file",
        "bearer token the stores require",
        "FILE",
    );
    o.optmulti(
        "",
        "peer",
        "another director of this group (repeat for each; a group of 3 or 5)",
        "URL",
    );
    o.optopt(
        "",
        "peer-token-file",
        "bearer token directors present to each other (default: the store token)",
        "FILE",
    );
    o.optopt(
        "",
        "compact-bytes",
        "snapshot the journal when it exceeds this (default 64M)",
        "BYTES",
    );
    o.optopt(
        "",
        "lost-after",
        "seconds a store may be down before its chunks are re-replicated (default 600)",
        "SECS",
    );
    o.optopt(
        "",
        "repair-interval",
        "seconds between periodic repair passes (default 600)",
        "SECS",
    );
    o.optopt(
        "",
        "repair-rate",
        "repair copy rate in MiB/s, 0 unlimited (default 32)",
        "MIBS",
    );
    o.optopt(
        "",
        "repair-copies",
        "chunks copied at once by repair (default 4)",
        "N",
    );
    o.optopt(
        "",
        "gc-grace",
        "seconds an unreferenced chunk is kept before deletion (default 3600)",
        "SECS",
    );
    o.optopt(
        "",
        "multipart-min-part",
        "smallest multipart part except the last (default 5M)",
        "BYTES",
    );
    o.optopt(
        "",
        "multipart-max-age",
        "seconds without activity before a multipart upload is aborted, 0 never (default 604800)",
        "SECS",
    );
    o.optopt(
        "",
        "keys",
        "keys file (see 'dpyfs admin key'): requests must be signed with one of its keys",
        "FILE",
    );
    o.optflag(
        "",
        "allow-anonymous",
        "without --keys: serve unsigned requests on a non-loopback address anyway",
    );
    cli::http_flags(&mut o);
    cli::tls_client_flags(&mut o);
    cli::standard_flags(&mut o);
    o
}

fn config(m: &getopts::Matches) -> Result<DirectorConfig, String> {
    let listen = m.opt_str("listen").unwrap_or_default();
    let stores = m.opt_strs("store");
    if stores.is_empty() {
        return Err("give at least one --store URL".into());
    }
    for s in &stores {
        if dpyfs::tls::strip_scheme(s).is_none() {
            return Err(format!(
                "--store {s:?}: a store URL starts with http:// or https://"
            ));
        }
    }
    let keys = m.opt_str("keys").map(PathBuf::from);
    if keys.is_none() && !is_loopback(&listen) && !m.opt_present("allow-anonymous") {
        return Err(format!(
            "--listen {listen} is not a loopback address and this director has no keys: \
             anyone on the network could read and write. Give --keys FILE (see \
             'dpyfs admin key create'), or add --allow-anonymous to do it anyway."
        ));
    }
    let mut c = DirectorConfig::new(
        &listen,
        cli::data_dir("data", &m.opt_str("data").unwrap_or_default())?,
        stores,
    );
    if let Some(n) = cli::opt_value(m, "replicas", |s| {
        s.parse::<usize>().ok().filter(|n| (1..=16).contains(n))
    })? {
        c.replicas = n;
    }
    let size = cli::opt_value(m, "chunk-size", |s| {
        parse_size(s).and_then(|n| u32::try_from(n).ok())
    })?;
    c.chunking = match m.opt_str("chunking").as_deref() {
        None | Some("cdc") if size.is_none() => Chunking::default_cdc(),
        None | Some("cdc") => return Err("--chunk-size needs --chunking fixed".into()),
        Some("fixed") => Chunking::Fixed {
            size: size.unwrap_or(1 << 20),
        },
        Some(other) => return Err(format!("--chunking {other:?}: use cdc or fixed")),
    };
    c.chunking
        .validate()
        .map_err(|e| format!("chunking: {e}"))?;
    if c.chunking.max_chunk() as u64 > dpyfs::store::CHUNK_BYTES_MAX {
        return Err(format!(
            "chunks of up to {} bytes would exceed a store's default --max-chunk of {}",
            c.chunking.max_chunk(),
            dpyfs::store::CHUNK_BYTES_MAX
        ));
    }
    c.store_token_file = m.opt_str("store-token-file").map(PathBuf::from);
    c.peers = m.opt_strs("peer");
    c.peer_token_file = m.opt_str("peer-token-file").map(PathBuf::from);
    if let Some(n) = cli::opt_value(m, "compact-bytes", parse_size)? {
        c.compact_bytes = n;
    }
    let secs = |s: &str| s.parse::<u64>().ok();
    if let Some(s) = cli::opt_value(m, "lost-after", secs)? {
        c.lost_after = Duration::from_secs(s);
    }
    if let Some(s) = cli::opt_value(m, "repair-interval", |s| secs(s).filter(|n| *n > 0))? {
        c.repair_interval = Duration::from_secs(s);
    }
    if let Some(r) = cli::opt_value(m, "repair-rate", |s| {
        s.parse::<f64>().ok().filter(|v| *v >= 0.0)
    })? {
        c.repair_rate_bytes_per_sec = (r * 1024.0 * 1024.0) as u64;
    }
    if let Some(n) = cli::opt_value(m, "repair-copies", |s| {
        s.parse::<usize>().ok().filter(|n| (1..=64).contains(n))
    })? {
        c.repair_copies = n;
    }
    if let Some(s) = cli::opt_value(m, "gc-grace", secs)? {
        c.gc_grace_secs = s;
    }
    if let Some(n) = cli::opt_value(m, "multipart-min-part", parse_size)? {
        c.multipart_min_part_bytes = n;
    }
    if let Some(s) = cli::opt_value(m, "multipart-max-age", secs)? {
        c.multipart_max_age_secs = s;
    }
    // Not a flag: a day shorter than 86400 s exists for tests of lifecycle rules only.
    if let Ok(v) = std::env::var(LIFECYCLE_DAY_ENV) {
        c.lifecycle_day_secs = v.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            format!("{LIFECYCLE_DAY_ENV}={v:?}: give a positive number of seconds")
        })?;
    }
    cli::apply_http_flags(m, &mut c.http)?;
    cli::apply_tls_client_flags(m, c.http.tls.as_ref())?;
    c.keys = keys;
    c.replication = match m.opt_str("replication").as_deref() {
        None | Some("chain") => Replication::Chain,
        Some("fanout") => Replication::FanOut,
        Some(other) => return Err(format!("--replication {other:?}: use chain or fanout")),
    };
    Ok(c)
}

fn main() -> ExitCode {
    let synopsis = format!(
        "Usage: {PROGRAM} --listen ADDR --data DIR --store URL [--store URL...] [options]\n\n\
         The dpyfs director: an S3-style HTTP front door that chunks objects, keeps N copies\n\
         of every chunk on the stores and records the namespace in a journal under DIR.\n\
         Logs go to stderr; set RUST_LOG=debug for more."
    );
    daemon::run(
        PROGRAM,
        &options(),
        &synopsis,
        config,
        director::serve::start,
    )
}
