//! The storage daemon: a content-addressed chunk store. It knows chunks, their names,
//! the disk and HTTP; it knows nothing of buckets, keys, objects, manifests or the
//! director (a manifest is just another chunk to it).

pub mod api;
pub mod engine;
pub mod error;
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

/// Reads a token file: the token is its first line, trimmed; an empty token is refused.
pub fn read_token(path: &std::path::Path) -> Result<String, StoreError> {
    let text = std::fs::read_to_string(path).map_err(|e| StoreError::io(path, e))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(StoreError::DataDir(format!(
            "token file {} is empty",
            path.display()
        )));
    }
    Ok(token)
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
    log::info!("listening on http://{}", server.addr);
    Ok((server, api))
}
