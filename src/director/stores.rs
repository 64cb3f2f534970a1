//! The stores the director knows: their identity (from their `/status`), zone, weight,
//! and whether they are up. A poller thread refreshes this; a failed chunk call marks a
//! store down at once, and the next good poll brings it back.

use super::client::{CallError, StoreClient};
use super::placement::{self, Candidate};
use crate::hash::Hash;
use serde_json::{Value, json};
use std::sync::RwLock;
use std::thread;
use std::time::Duration;

/// Interval between two `/status` polls of every store.
pub const STATUS_POLL_MS: u64 = 2_000;

#[derive(Clone, Debug)]
pub struct StoreState {
    pub url: String,
    /// Known once the store has answered `/status` at least once.
    pub id: Option<String>,
    pub zone: String,
    /// Placement weight: the store's disk size in GiB.
    pub weight: f64,
    pub up: bool,
    pub last_error: Option<String>,
    pub status: Option<Value>,
}

/// A store picked for one chunk, in placement order.
#[derive(Clone, Debug)]
pub struct Target {
    pub index: usize,
    pub url: String,
    pub id: String,
    pub up: bool,
}

pub struct Stores {
    list: RwLock<Vec<StoreState>>,
    pub client: StoreClient,
}

impl Stores {
    pub fn new(urls: &[String], client: StoreClient) -> Stores {
        let list = urls
            .iter()
            .map(|u| StoreState {
                url: u.trim_end_matches('/').to_string(),
                id: None,
                zone: String::new(),
                weight: 0.0,
                up: false,
                last_error: Some("not polled yet".into()),
                status: None,
            })
            .collect();
        Stores {
            list: RwLock::new(list),
            client,
        }
    }

    pub fn snapshot(&self) -> Vec<StoreState> {
        self.list.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn live_count(&self) -> usize {
        self.snapshot()
            .iter()
            .filter(|s| s.up && s.id.is_some())
            .count()
    }

    /// Polls every store's `/status` (in parallel) and records the answers.
    pub fn poll(&self) {
        let urls: Vec<String> = self.snapshot().into_iter().map(|s| s.url).collect();
        let answers: Vec<Result<Value, CallError>> = thread::scope(|sc| {
            let hs: Vec<_> = urls
                .iter()
                .map(|u| sc.spawn(move || self.client.status(u)))
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(CallError::Transport("poll panicked".into())))
                })
                .collect()
        });
        let mut list = self.list.write().unwrap_or_else(|p| p.into_inner());
        for (s, a) in list.iter_mut().zip(answers) {
            match a {
                Ok(v) => apply_status(s, v),
                Err(e) => {
                    if s.up {
                        log::warn!("store {} is down: {e}", s.url);
                    }
                    s.up = false;
                    s.last_error = Some(e.to_string());
                }
            }
        }
    }

    pub fn spawn_poller(self: &std::sync::Arc<Self>) {
        let me = std::sync::Arc::clone(self);
        let spawned = thread::Builder::new()
            .name("store-poller".into())
            .spawn(move || {
                loop {
                    thread::sleep(Duration::from_millis(STATUS_POLL_MS));
                    me.poll();
                }
            });
        if let Err(e) = spawned {
            log::error!("cannot start the store poller: {e}");
        }
    }

    /// A call to this store just failed without an answer: skip it until a poll succeeds.
    pub fn mark_down(&self, index: usize, why: &str) {
        let mut list = self.list.write().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = list.get_mut(index) {
            if s.up {
                log::warn!("store {} marked down: {why}", s.url);
            }
            s.up = false;
            s.last_error = Some(why.to_string());
        }
    }

    /// Every store with a known id, in placement order for `h` (weighted rendezvous
    /// hashing, distinct zones first). Down stores keep their place in the order: writes
    /// skip them, reads try them last.
    pub fn placement(&self, h: &Hash) -> Vec<Target> {
        let list = self.list.read().unwrap_or_else(|p| p.into_inner());
        let known: Vec<(usize, &StoreState, &str)> = list
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.id.as_deref().map(|id| (i, s, id)))
            .collect();
        let cands: Vec<Candidate<'_>> = known
            .iter()
            .map(|(_, s, id)| Candidate {
                id,
                zone: &s.zone,
                weight: s.weight,
            })
            .collect();
        placement::order(h, &cands)
            .into_iter()
            .map(|c| {
                let (i, s, id) = known[c];
                Target {
                    index: i,
                    url: s.url.clone(),
                    id: id.to_string(),
                    up: s.up,
                }
            })
            .collect()
    }

    pub fn status_json(&self) -> Value {
        let list = self.snapshot();
        Value::Array(
            list.iter()
                .map(|s| {
                    json!({
                        "url": s.url, "id": s.id, "zone": s.zone, "weight": s.weight,
                        "up": s.up, "last_error": s.last_error, "status": s.status,
                    })
                })
                .collect(),
        )
    }
}

fn apply_status(s: &mut StoreState, v: Value) {
    let id = v.get("id").and_then(Value::as_str).map(str::to_string);
    if let (Some(old), Some(new)) = (&s.id, &id)
        && old != new
    {
        log::error!(
            "store at {} now reports id '{new}' (was '{old}'): keeping it down",
            s.url
        );
        s.up = false;
        s.last_error = Some(format!("id changed from '{old}' to '{new}'"));
        return;
    }
    let total = v
        .pointer("/disk/total_bytes")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    if !s.up {
        log::info!("store {} ({}) is up", s.url, id.as_deref().unwrap_or("?"));
    }
    s.id = id;
    s.zone = v
        .get("zone")
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string();
    s.weight = (total as f64 / (1u64 << 30) as f64).max(placement::WEIGHT_MIN);
    s.up = true;
    s.last_error = None;
    s.status = Some(v);
}
