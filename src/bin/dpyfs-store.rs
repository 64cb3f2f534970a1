//! `dpyfs-store`: the storage daemon. Parses flags into a `StoreConfig` and runs it.

#[path = "common/daemon.rs"]
mod daemon;

use dpyfs::cli;
use dpyfs::store::{self, Reserve, StoreConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const PROGRAM: &str = "dpyfs-store";

fn options() -> getopts::Options {
    let mut o = getopts::Options::new();
    o.reqopt(
        "l",
        "listen",
        "address to listen on, e.g. 127.0.0.1:7071",
        "ADDR",
    );
    o.reqopt("d", "data", "data directory (created if missing)", "DIR");
    o.optopt(
        "",
        "id",
        "store id; refuse a data dir that belongs to another id",
        "NAME",
    );
    o.optopt(
        "",
        "zone",
        "failure zone (a board, a room); default 'default'",
        "ZONE",
    );
    o.optopt(
        "",
        "token-file",
        "require 'Authorization: Bearer <first line of FILE>' (needed off loopback)",
        "FILE",
    );
    o.optopt(
        "",
        "max-chunk",
        "largest chunk accepted, e.g. 8M (default 8M)",
        "BYTES",
    );
    o.optopt(
        "",
        "reserve",
        "free space to keep: bytes (512M, 2G) or percent (5%); default 1%",
        "SIZE",
    );
    o.optopt(
        "",
        "scrub-rate",
        "scrubber speed in MiB/s, 0 disables (default 4)",
        "MIBS",
    );
    o.optopt(
        "",
        "scrub-pause",
        "seconds between scrub passes (default 3600)",
        "SECS",
    );
    cli::http_flags(&mut o);
    o.optopt(
        "",
        "ca",
        "trust this CA when forwarding chunks to https:// stores (default: --client-ca)",
        "FILE",
    );
    cli::standard_flags(&mut o);
    o
}

fn config(m: &getopts::Matches) -> Result<StoreConfig, String> {
    let listen = m.opt_str("listen").unwrap_or_default();
    let mut c = StoreConfig::new(
        &listen,
        cli::data_dir("data", &m.opt_str("data").unwrap_or_default())?,
    );
    c.id = cli::opt_value(m, "id", |s| {
        store::layout::valid_name(s).then(|| s.to_string())
    })?;
    c.zone = cli::opt_value(m, "zone", |s| {
        store::layout::valid_name(s).then(|| s.to_string())
    })?;
    c.token_file = m.opt_str("token-file").map(PathBuf::from);
    if let Some(n) = cli::opt_value(m, "max-chunk", dpyfs::human::parse_size)? {
        c.max_chunk_bytes = n;
    }
    if let Some(r) = cli::opt_value(m, "reserve", Reserve::parse)? {
        c.reserve = r;
    }
    if let Some(r) = cli::opt_value(m, "scrub-rate", |s| {
        s.parse::<f64>().ok().filter(|v| *v >= 0.0)
    })? {
        c.scrub_rate_bytes_per_sec = (r * 1024.0 * 1024.0) as u64;
    }
    if let Some(s) = cli::opt_value(m, "scrub-pause", |s| s.parse::<u64>().ok())? {
        c.scrub_pause = Duration::from_secs(s);
    }
    cli::apply_http_flags(m, &mut c.http)?;
    // Chain replication makes this store a client of the next store: it trusts the
    // cluster CA (`--ca`, else the `--client-ca` it checks clients against) and presents
    // its own certificate, which `dpyfs ca issue` makes usable as a client certificate.
    let identity = c.http.tls.clone();
    dpyfs::tls::set_client(dpyfs::tls::ClientFiles {
        ca: m
            .opt_str("ca")
            .map(PathBuf::from)
            .or_else(|| identity.as_ref().and_then(|f| f.client_ca.clone())),
        cert: identity.as_ref().map(|f| f.cert.clone()),
        key: identity.as_ref().map(|f| f.key.clone()),
    })?;
    store::check_listen_auth(&c)?;
    Ok(c)
}

fn main() -> ExitCode {
    let synopsis = format!(
        "Usage: {PROGRAM} --listen ADDR --data DIR [options]\n\n\
         The dpyfs storage daemon: keeps chunks named by their SHA-256 under DIR/chunks/.\n\
         Logs go to stderr; set RUST_LOG=debug for more."
    );
    daemon::run(PROGRAM, &options(), &synopsis, config, |c: StoreConfig| {
        store::start(&c)
    })
}
