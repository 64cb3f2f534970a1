//! Starting a director: open it, start its background threads, and serve its HTTP API.

use crate::director::error::{DirectorError, Result};
use crate::director::{Director, DirectorConfig};
use std::sync::Arc;
use std::time::Duration;

/// The store poller (liveness, new members, lost stores trigger repair), the repair
/// loop, the expiry of abandoned multipart uploads and the buckets' lifecycle rules.
fn spawn_background(d: &Arc<Director>) -> Result<()> {
    let poller = Arc::clone(d);
    std::thread::Builder::new()
        .name("store-poller".into())
        .spawn(move || {
            // A pass starts when membership changes, when a store becomes lost (its
            // chunks need new copies) and when a store comes back up (surplus copies made
            // meanwhile can go, and it may need copies it missed).
            let mut lost_before: Vec<String> = Vec::new();
            let mut up_before: Vec<String> = Vec::new();
            loop {
                std::thread::sleep(Duration::from_millis(crate::director::data::stores::STATUS_POLL_MS));
                let changed = poller.poll_stores();
                let now = poller.stores.snapshot();
                let ids = |f: &dyn Fn(&crate::director::data::stores::StoreState) -> bool| -> Vec<String> {
                    now.iter().filter(|s| f(s)).map(|s| s.id.clone()).collect()
                };
                let lost = ids(&|s| s.lost(poller.cfg.lost_after));
                let up = ids(&|s| s.up);
                let newly =
                    |now: &[String], before: &[String]| now.iter().any(|i| !before.contains(i));
                if changed || newly(&lost, &lost_before) || newly(&up, &up_before) {
                    poller.repairer.request();
                }
                lost_before = lost;
                up_before = up;
            }
        })
        .map_err(|e| DirectorError::Internal(format!("cannot start the poller: {e}")))?;
    let repairer = Arc::clone(d);
    std::thread::Builder::new()
        .name("repair".into())
        .spawn(move || repairer.repair_loop())
        .map_err(|e| DirectorError::Internal(format!("cannot start repair: {e}")))?;
    let lifecycle = Arc::clone(d);
    std::thread::Builder::new()
        .name("lifecycle".into())
        .spawn(move || lifecycle.lifecycle_loop())
        .map_err(|e| DirectorError::Internal(format!("cannot start lifecycle: {e}")))?;
    if d.cfg.multipart_max_age_secs > 0 {
        let expiry = Arc::clone(d);
        std::thread::Builder::new()
            .name("multipart-expiry".into())
            .spawn(move || expiry.expiry_loop())
            .map_err(|e| DirectorError::Internal(format!("cannot start multipart expiry: {e}")))?;
    }
    Ok(())
}

/// Opens the director and starts serving.
pub fn start(
    cfg: DirectorConfig,
) -> Result<(crate::http::Server, Arc<crate::director::s3::DirectorApi>)> {
    let http = cfg.http.clone();
    let listen = cfg.listen.clone();
    let auth = crate::director::s3::auth::Auth::from_path(cfg.keys.as_deref())
        .map_err(DirectorError::Internal)?;
    // The port first: a director that cannot listen must leave its data folder as it
    // found it (no id made, no store journaled).
    let listener = crate::http::Server::bind(&listen)
        .map_err(|e| DirectorError::Internal(format!("cannot listen on {listen}: {e}")))?;
    let director = Arc::new(Director::open(cfg)?);
    // Before the first commit (the poller journals new stores). A new group's raft
    // thread first learns its peers' ids over HTTP, once everyone listens.
    director.start_replica()?;
    if director.cfg.peers.is_empty() {
        // A group elects its leader only once every director listens: its poller
        // journals the stores then.
        director.poll_stores();
    }
    spawn_background(&director)?;
    match &director.cfg.keys {
        Some(p) => log::info!(
            "keys file {}: requests must be signed (AWS Signature V4)",
            p.display()
        ),
        None if crate::http::is_loopback(&listen) => {
            log::info!("no keys file: unsigned requests are served (loopback only)")
        }
        None => log::warn!(
            "no keys file and --allow-anonymous: anyone who can reach {listen} can read, \
             write and delete everything"
        ),
    }
    let api =
        Arc::new(crate::director::s3::DirectorApi::new(Arc::clone(&director)).with_auth(auth));
    let handler_api = Arc::clone(&api);
    let server = crate::http::Server::start_on(
        listener,
        &http,
        Arc::new(move |req: &mut crate::http::Request<'_>| {
            // The directors' own endpoints come before the S3 front and its keys.
            match handler_api.director.raft_route(req) {
                Some(resp) => resp,
                None => handler_api.handle(req),
            }
        }),
    )
    .map_err(|e| DirectorError::Internal(format!("cannot listen on {listen}: {e}")))?;
    log::info!(
        "director listening on {} with {} store(s), {} up, {} replicas",
        server.url(),
        director.cfg.stores.len(),
        director.stores.live_count(),
        director.cfg.replicas
    );
    Ok((server, api))
}
