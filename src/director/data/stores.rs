//! The stores of the cluster at run time: the journaled members (id, URL, zone, weight,
//! draining) with their liveness. A poller refreshes liveness from each store's `/status`;
//! a failed chunk call marks a store down at once, and the next good poll brings it back.
//! A store down for longer than `lost_after` counts as lost: repair stops waiting for it.

use super::placement::{self, Candidate};
use super::store_client::{CallError, StoreClient};
use crate::director::meta::records::Member;
use crate::hash::Hash;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

/// Interval between two `/status` polls of every store.
pub const STATUS_POLL_MS: u64 = 2_000;
/// Default time a store may be down before its chunks are re-replicated elsewhere.
pub const LOST_AFTER_SECS_DEFAULT: u64 = 600;

#[derive(Clone, Debug)]
pub struct StoreState {
    pub id: String,
    pub url: String,
    pub zone: String,
    pub weight: f64,
    pub draining: bool,
    pub up: bool,
    /// When the store was last seen going down (or the director started without it).
    pub down_since: Option<Instant>,
    pub last_error: Option<String>,
    pub status: Option<Value>,
    /// When `status` was received: the page and `dpyfs status` say how old it is.
    pub status_at: Option<Instant>,
    /// Consecutive `/status` polls that got no answer.
    pub failed_polls: u32,
}

/// A store picked for one chunk, in placement order.
#[derive(Clone, Debug)]
pub struct Target {
    pub index: usize,
    pub url: String,
    pub id: String,
    pub up: bool,
    pub lost: bool,
}

/// A `--store` URL that answered with an identity the director had not journaled.
#[derive(Clone, Debug)]
pub struct Discovered {
    pub url: String,
    pub id: String,
    pub zone: String,
    /// Disk size in GiB: the default placement weight.
    pub capacity_weight: f64,
}

pub struct Stores {
    list: RwLock<Vec<StoreState>>,
    /// URLs given with `--store` (or `admin store add`) whose identity is not journaled yet.
    pending: Mutex<Vec<String>>,
    pub client: StoreClient,
    pub lost_after: Duration,
}

impl StoreState {
    pub fn lost(&self, lost_after: Duration) -> bool {
        !self.up && self.down_since.is_some_and(|t| t.elapsed() >= lost_after)
    }
}

fn capacity_weight(v: &Value) -> f64 {
    let total = v
        .pointer("/disk/total_bytes")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    (total as f64 / (1u64 << 30) as f64).max(placement::WEIGHT_MIN)
}

impl Stores {
    pub fn new(client: StoreClient, lost_after: Duration) -> Stores {
        Stores {
            list: RwLock::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
            client,
            lost_after,
        }
    }

    pub fn snapshot(&self) -> Vec<StoreState> {
        self.list.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Rebuilds the list from the journaled members, keeping what is known of liveness.
    pub fn sync_members(&self, members: &BTreeMap<String, Member>) {
        let mut list = self.list.write().unwrap_or_else(|p| p.into_inner());
        let old: BTreeMap<String, StoreState> = list.drain(..).map(|s| (s.id.clone(), s)).collect();
        for (id, m) in members {
            let prev = old.get(id);
            list.push(StoreState {
                id: id.clone(),
                url: m.url.clone(),
                zone: m.zone.clone(),
                weight: m.weight,
                draining: m.draining,
                up: prev.is_some_and(|p| p.up && p.url == m.url),
                down_since: prev.map_or(Some(Instant::now()), |p| p.down_since),
                last_error: prev.and_then(|p| p.last_error.clone()),
                status: prev.and_then(|p| p.status.clone()),
                status_at: prev.and_then(|p| p.status_at),
                failed_polls: prev.map_or(0, |p| p.failed_polls),
            });
        }
    }

    /// URLs to identify on the next poll; those of known members are ignored.
    pub fn add_pending(&self, urls: &[String]) {
        let known: Vec<String> = self.snapshot().into_iter().map(|s| s.url).collect();
        let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        for u in urls {
            let u = u.trim_end_matches('/').to_string();
            if !known.contains(&u) && !p.contains(&u) {
                p.push(u);
            }
        }
    }

    pub fn forget_pending(&self, url: &str) {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|u| u != url);
    }

    /// Stores that are up and take new copies.
    pub fn live_count(&self) -> usize {
        self.snapshot()
            .iter()
            .filter(|s| s.up && !s.draining)
            .count()
    }

    /// Polls every member and pending URL (in parallel), records liveness, and returns
    /// the pending URLs that answered (the director journals them).
    pub fn poll(&self) -> Vec<Discovered> {
        let members: Vec<(String, String)> =
            self.snapshot().into_iter().map(|s| (s.id, s.url)).collect();
        let pending: Vec<String> = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let urls: Vec<&String> = members
            .iter()
            .map(|(_, u)| u)
            .chain(pending.iter())
            .collect();
        let answers = self.status_all(&urls);
        let (member_answers, pending_answers) = answers.split_at(members.len());
        {
            let mut list = self.list.write().unwrap_or_else(|p| p.into_inner());
            for ((id, url), a) in members.iter().zip(member_answers) {
                if let Some(s) = list.iter_mut().find(|s| &s.id == id && &s.url == url) {
                    record_answer(s, a);
                }
            }
        }
        pending
            .iter()
            .zip(pending_answers)
            .filter_map(|(url, a)| {
                let v = a.as_ref().ok()?;
                Some(Discovered {
                    url: url.clone(),
                    id: v.get("id")?.as_str()?.to_string(),
                    zone: v
                        .get("zone")
                        .and_then(Value::as_str)
                        .unwrap_or("default")
                        .to_string(),
                    capacity_weight: capacity_weight(v),
                })
            })
            .collect()
    }

    fn status_all(&self, urls: &[&String]) -> Vec<Result<Value, CallError>> {
        thread::scope(|sc| {
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
        })
    }

    /// A call to this store just failed without an answer: skip it until a poll succeeds.
    /// (By id: list positions change when membership does.)
    pub fn mark_down(&self, id: &str, why: &str) {
        let mut list = self.list.write().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = list.iter_mut().find(|s| s.id == id) {
            set_down(s, why);
        }
    }

    /// Non-draining members in placement order for `h` (weighted rendezvous hashing,
    /// distinct zones first). Down stores keep their place: writes skip them, reads try
    /// them last, repair waits for them until they are lost.
    pub fn placement(&self, h: &Hash) -> Vec<Target> {
        let list = self.list.read().unwrap_or_else(|p| p.into_inner());
        let active: Vec<usize> = (0..list.len()).filter(|&i| !list[i].draining).collect();
        let cands: Vec<Candidate<'_>> = active
            .iter()
            .map(|&i| Candidate {
                id: &list[i].id,
                zone: &list[i].zone,
                weight: list[i].weight,
            })
            .collect();
        placement::order(h, &cands)
            .into_iter()
            .map(|c| self.target(&list, active[c]))
            .collect()
    }

    /// Every member that may hold `h`: placement order, then draining stores; live ones
    /// first within that order.
    pub fn read_order(&self, h: &Hash) -> Vec<Target> {
        let mut t = self.placement(h);
        let list = self.list.read().unwrap_or_else(|p| p.into_inner());
        t.extend(
            (0..list.len())
                .filter(|&i| list[i].draining)
                .map(|i| self.target(&list, i)),
        );
        t.sort_by_key(|t| !t.up);
        t
    }

    fn target(&self, list: &[StoreState], i: usize) -> Target {
        let s = &list[i];
        Target {
            index: i,
            url: s.url.clone(),
            id: s.id.clone(),
            up: s.up,
            lost: s.lost(self.lost_after),
        }
    }

    pub fn status_json(&self) -> Value {
        Value::Array(
            self.snapshot()
                .iter()
                .map(|s| {
                    json!({
                        "id": s.id, "url": s.url, "zone": s.zone, "weight": s.weight,
                        "draining": s.draining, "up": s.up, "lost": s.lost(self.lost_after),
                        "down_seconds": s.down_since.filter(|_| !s.up).map(|t| t.elapsed().as_secs()),
                        "last_error": s.last_error, "status": s.status,
                        "status_age_ms": s.status_at.map(|t| t.elapsed().as_millis() as u64),
                    })
                })
                .collect(),
        )
    }
}

fn set_down(s: &mut StoreState, why: &str) {
    if s.up {
        log::warn!("store {} ({}) is down: {why}", s.id, s.url);
        s.down_since = Some(Instant::now());
    }
    s.up = false;
    s.last_error = Some(why.to_string());
}

/// Polls that may go unanswered before a store is marked down. One missed poll on a busy
/// board is not an outage; a refused connection or a failed chunk call marks it down at
/// once.
pub const FAILED_POLLS_MAX: u32 = 2;

fn record_answer(s: &mut StoreState, a: &Result<Value, CallError>) {
    let v = match a {
        Ok(v) => v,
        Err(e) => {
            s.failed_polls += 1;
            let refused = matches!(e, CallError::Transport(t) if t.contains("refused"));
            if refused || s.failed_polls >= FAILED_POLLS_MAX || !s.up {
                set_down(s, &e.to_string());
            }
            return;
        }
    };
    s.failed_polls = 0;
    let id = v.get("id").and_then(Value::as_str).unwrap_or("");
    if id != s.id {
        return set_down(
            s,
            &format!(
                "the store at {} now reports id '{id}', not '{}'",
                s.url, s.id
            ),
        );
    }
    if !s.up {
        log::info!("store {} ({}) is up", s.id, s.url);
    }
    s.up = true;
    s.down_since = None;
    s.last_error = None;
    s.status = Some(v.clone());
    s.status_at = Some(Instant::now());
}
