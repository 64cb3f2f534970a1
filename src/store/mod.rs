//! The storage daemon: a content-addressed chunk store. It knows chunks, their names,
//! the disk and HTTP; it knows nothing of buckets, keys, objects, manifests or the
//! director (a manifest is just another chunk to it).

pub mod api;
pub mod engine;
pub mod error;
pub mod forward;
pub mod layout;
pub mod scrub;

pub use engine::{CHUNK_BYTES_MAX, Reserve, Store};
pub use error::StoreError;

use crate::http::{Server, ServerConfig};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Default scrub rate: gentle enough to go unnoticed on an SD card.
pub const SCRUB_RATE_BYTES_PER_SEC_DEFAULT: u64 = 4 * 1024 * 1024;
/// Default pause between two scrub passes.
pub const SCRUB_PAUSE_SECS_DEFAULT: u64 = 3600;

/// Everything `dpyfs-store` needs, parsed and validated by its binary.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub listen: String,
    pub data: PathBuf,
    pub id: Option<String>,
    pub zone: Option<String>,
    pub token_file: Option<PathBuf>,
    pub max_chunk_bytes: u64,
    pub reserve: Reserve,
    pub scrub_rate_bytes_per_sec: u64,
    pub scrub_pause: Duration,
    pub http: ServerConfig,
}

impl StoreConfig {
    pub fn new(listen: &str, data: PathBuf) -> StoreConfig {
        StoreConfig {
            listen: listen.to_string(),
            data,
            id: None,
            zone: None,
            token_file: None,
            max_chunk_bytes: CHUNK_BYTES_MAX,
            reserve: Reserve::Percent(1.0),
            scrub_rate_bytes_per_sec: SCRUB_RATE_BYTES_PER_SEC_DEFAULT,
            scrub_pause: Duration::from_secs(SCRUB_PAUSE_SECS_DEFAULT),
            http: ServerConfig::default(),
        }
    }
}

/// The shortest bearer token accepted: a token a person typed ("secret") would be guessed.
pub const TOKEN_CHARS_MIN: usize = 16;
/// Random bytes in a token made by `create_token_file` (64 hex characters).
pub const TOKEN_RANDOM_BYTES: usize = 32;

/// Reads a token file: the token is its first line, trimmed; an empty or short token is
/// refused.
pub fn read_token(path: &std::path::Path) -> Result<String, StoreError> {
    let text = std::fs::read_to_string(path).map_err(|e| StoreError::io(path, e))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.chars().count() < TOKEN_CHARS_MIN {
        return Err(StoreError::DataDir(format!(
            "token file {}: the token (its first line) has {} characters, at least \
             {TOKEN_CHARS_MIN} are needed; make one with \
             `umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \\n' > {}`",
            path.display(),
            token.chars().count(),
            path.display()
        )));
    }
    Ok(token)
}

/// Writes a new random token to `path` (mode 0600) unless the file exists already; true
/// when it made one. `dpyfs dev` uses it so that even a local cluster's stores are closed.
pub fn create_token_file(path: &std::path::Path) -> std::io::Result<bool> {
    use std::io::Read;
    if path.exists() {
        return Ok(false);
    }
    let mut bytes = [0u8; TOKEN_RANDOM_BYTES];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let mut text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    text.push('\n');
    crate::fsutil::write_atomic_mode(path, text.as_bytes(), 0o600)?;
    Ok(true)
}

/// The rule every daemon follows: listening beyond loopback needs authentication. Without
/// a token anyone on the network could list the chunks (manifests name buckets and keys)
/// and delete every copy of them.
pub fn check_listen_auth(cfg: &StoreConfig) -> Result<(), String> {
    if cfg.token_file.is_some() || crate::http::is_loopback(&cfg.listen) {
        return Ok(());
    }
    Err(format!(
        "--listen {} is not a loopback address and this store has no --token-file: anyone \
         on the network could read and delete every chunk. Make a token file \
         (`umask 077; od -An -N32 -tx1 /dev/urandom | tr -d ' \\n' > /etc/dpyfs/store.token`), \
         start the store with --token-file /etc/dpyfs/store.token and the director with \
         --store-token-file /etc/dpyfs/store.token (docs/OPERATIONS.md)",
        cfg.listen
    ))
}

/// Opens the store and starts serving; returns the running server.
pub fn start(cfg: &StoreConfig) -> Result<(Server, Arc<api::StoreApi>), StoreError> {
    let token = cfg.token_file.as_deref().map(read_token).transpose()?;
    let store = Arc::new(Store::open(
        &cfg.data,
        cfg.id.as_deref(),
        cfg.zone.as_deref(),
        cfg.max_chunk_bytes,
        cfg.reserve,
    )?);
    log::info!(
        "store '{}' (zone '{}') in {}: {} chunks, {} bytes",
        store.identity.id,
        store.identity.zone,
        cfg.data.display(),
        store.chunk_count(),
        store.chunk_bytes()
    );
    let scrubber = Arc::new(scrub::Scrubber::new(cfg.scrub_rate_bytes_per_sec));
    scrubber.spawn(Arc::clone(&store), cfg.scrub_pause);
    let api = Arc::new(api::StoreApi::new(store, scrubber, token));
    let handler_api = Arc::clone(&api);
    let server = Server::start(
        &cfg.listen,
        &cfg.http,
        Arc::new(move |req: &mut crate::http::Request<'_>| handler_api.handle(req)),
    )
    .map_err(|e| StoreError::DataDir(format!("cannot listen on {}: {e}", cfg.listen)))?;
    log::info!("listening on {}", server.url());
    Ok((server, api))
}
