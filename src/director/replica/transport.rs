//! Directors talking to directors over HTTP: a sender thread per peer that posts raft
//! messages in batches (a lost batch is fine, raft resends), the id probe of `--peer`
//! URLs, and the forwarding of a follower's journal records to the leader. The only
//! replica file that touches ureq. Every call carries the shared token as
//! `Authorization: Bearer`.

use super::wire::{Batch, WireEnvelope};
use crate::raft::NodeId;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Connecting to a peer takes at most this long before the batch is dropped.
pub const PEER_CONNECT_TIMEOUT_MS: u64 = 500;
/// A raft batch must be answered within this; an install of a large snapshot may take
/// longer, hence the generous bound.
pub const PEER_IO_TIMEOUT_MS: u64 = 30_000;
/// After a failed post, a sender waits this long before the next one.
pub const PEER_RETRY_MS: u64 = 100;
/// A forwarded commit waits at most this long for the leader's answer.
pub const FORWARD_TIMEOUT_MS: u64 = 15_000;
/// Messages queued for one peer beyond this are dropped (the peer is down; raft resends).
const QUEUE_MESSAGES_MAX: usize = 4096;

/// What a peer answered to a forwarded record: its seq, or the leader's error.
pub type Forwarded = Result<u64, (u16, String, String)>;

struct Queue {
    messages: Vec<WireEnvelope>,
}

struct Link {
    url: String,
    queue: Arc<(Mutex<Queue>, Condvar)>,
    /// When a post to it last succeeded.
    last_ok: Arc<Mutex<Option<Instant>>>,
}

/// The other directors: id -> URL, and a sender thread per known id.
pub struct Peers {
    my_url: String,
    token: Option<String>,
    agent: ureq::Agent,
    links: Mutex<BTreeMap<NodeId, Link>>,
}

/// What `GET /_dpyfs/raft/id` told of a director.
pub struct Probe {
    pub id: NodeId,
    pub last_index: u64,
    pub voters: Vec<NodeId>,
    pub peers: BTreeMap<NodeId, String>,
}

/// One peer as `/_dpyfs/status` shows it.
pub struct PeerView {
    pub id: NodeId,
    pub url: String,
    pub up: bool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Peers {
    pub fn new(my_url: String, token: Option<String>) -> Peers {
        let agent = ureq::AgentBuilder::new()
            .resolver(crate::resolve::netloc)
            .tls_connector(crate::tls::connector())
            .timeout_connect(Duration::from_millis(PEER_CONNECT_TIMEOUT_MS))
            .timeout(Duration::from_millis(PEER_IO_TIMEOUT_MS))
            .max_idle_connections_per_host(2)
            .build();
        Peers {
            my_url,
            token,
            agent,
            links: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn my_url(&self) -> &str {
        &self.my_url
    }

    fn auth(&self, req: ureq::Request) -> ureq::Request {
        match &self.token {
            Some(t) => req.set("Authorization", &format!("Bearer {t}")),
            None => req,
        }
    }

    /// Notes (or updates) where peer `id` answers, starting its sender on first sight.
    pub fn learn(self: &Arc<Self>, id: NodeId, url: &str) {
        let url = url.trim_end_matches('/').to_string();
        let mut links = lock(&self.links);
        if let Some(link) = links.get_mut(&id) {
            if link.url != url {
                log::info!("director {id} now answers at {url}");
                link.url = url;
            }
            return;
        }
        log::info!("director {id} answers at {url}");
        let queue = Arc::new((Mutex::new(Queue { messages: vec![] }), Condvar::new()));
        let last_ok = Arc::new(Mutex::new(None));
        links.insert(
            id,
            Link {
                url,
                queue: Arc::clone(&queue),
                last_ok: Arc::clone(&last_ok),
            },
        );
        drop(links);
        let me = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name(format!("raft-send-{id}"))
            .spawn(move || me.send_loop(id, &queue, &last_ok));
        if let Err(e) = spawned {
            log::error!("cannot start the sender to director {id}: {e}");
        }
    }

    pub fn url_of(&self, id: NodeId) -> Option<String> {
        lock(&self.links).get(&id).map(|l| l.url.clone())
    }

    pub fn views(&self, within: Duration) -> Vec<PeerView> {
        lock(&self.links)
            .iter()
            .map(|(id, l)| PeerView {
                id: *id,
                url: l.url.clone(),
                up: lock(&l.last_ok).is_some_and(|t| t.elapsed() < within),
            })
            .collect()
    }

    /// Queues messages for their peers; never blocks on the network.
    pub fn send(&self, messages: Vec<crate::raft::Envelope>) {
        let links = lock(&self.links);
        for m in messages {
            let Some(link) = links.get(&m.to) else {
                log::debug!("no URL known for director {}; message dropped", m.to);
                continue;
            };
            let (q, cv) = &*link.queue;
            let mut q = lock(q);
            if q.messages.len() < QUEUE_MESSAGES_MAX {
                q.messages.push(super::wire::to_wire(&m));
                cv.notify_one();
            }
        }
    }

    fn send_loop(
        &self,
        id: NodeId,
        queue: &(Mutex<Queue>, Condvar),
        last_ok: &Mutex<Option<Instant>>,
    ) {
        let (q, cv) = queue;
        loop {
            let messages = {
                let mut g = lock(q);
                while g.messages.is_empty() {
                    g = cv.wait(g).unwrap_or_else(PoisonError::into_inner);
                }
                std::mem::take(&mut g.messages)
            };
            let Some(url) = self.url_of(id) else {
                continue;
            };
            let batch = Batch {
                from_url: self.my_url.clone(),
                messages,
            };
            let body = match serde_json::to_vec(&batch) {
                Ok(b) => b,
                Err(e) => {
                    log::error!("cannot encode raft messages: {e}");
                    continue;
                }
            };
            let req = self.auth(self.agent.post(&format!("{url}/_dpyfs/raft/msg")));
            match req
                .set("Content-Type", "application/json")
                .send_bytes(&body)
            {
                Ok(_) => *lock(last_ok) = Some(Instant::now()),
                Err(e) => {
                    log::debug!("raft messages to director {id} at {url}: {e}");
                    std::thread::sleep(Duration::from_millis(PEER_RETRY_MS));
                }
            }
        }
    }

    /// Asks a director's URL for its id, how long its journal is, the voters it knows
    /// (empty before its group is known) and the URLs of its peers.
    pub fn probe(&self, url: &str) -> Result<Probe, String> {
        let url = url.trim_end_matches('/');
        let resp = self
            .auth(self.agent.get(&format!("{url}/_dpyfs/raft/id")))
            .timeout(Duration::from_millis(2_000))
            .call()
            .map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_reader(resp.into_reader()).map_err(|e| e.to_string())?;
        let id = v
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("{url}/_dpyfs/raft/id answered without an id"))?;
        let peers = v
            .get("peers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, u)| Some((k.parse::<NodeId>().ok()?, u.as_str()?.to_string())))
            .collect();
        Ok(Probe {
            id,
            last_index: v.get("last_index").and_then(Value::as_u64).unwrap_or(0),
            voters: v
                .get("voters")
                .cloned()
                .and_then(|x| serde_json::from_value(x).ok())
                .unwrap_or_default(),
            peers,
        })
    }

    /// Every peer's URL by id.
    pub fn urls(&self) -> BTreeMap<NodeId, String> {
        lock(&self.links)
            .iter()
            .map(|(id, l)| (*id, l.url.clone()))
            .collect()
    }

    /// Posts a change of voters to the leader at `url`: its seq, or the leader's error.
    pub fn forward_change(&self, url: &str, body: &Value) -> Forwarded {
        let req = self
            .auth(self.agent.post(&format!("{url}/_dpyfs/raft/change")))
            .set("Content-Type", "application/json")
            .timeout(Duration::from_millis(FORWARD_TIMEOUT_MS));
        let bytes =
            serde_json::to_vec(body).map_err(|e| (500, "InternalError".into(), e.to_string()))?;
        match req.send_bytes(&bytes) {
            Ok(r) => {
                let v: Value = serde_json::from_reader(r.into_reader()).unwrap_or(Value::Null);
                parse_result(&v)
            }
            Err(ureq::Error::Status(status, r)) => {
                let v: Value = serde_json::from_reader(r.into_reader()).unwrap_or(Value::Null);
                let code = v["code"].as_str().unwrap_or("InternalError").to_string();
                let msg = v["error"].as_str().unwrap_or("").to_string();
                Err((status, code, msg))
            }
            Err(e) => Err((
                503,
                "ServiceUnavailable".into(),
                format!("the leading director at {url} did not answer ({e})"),
            )),
        }
    }

    /// Sends journal records to the leader at `url`, which proposes them, waits until
    /// they are applied and answers with each one's seq or error.
    pub fn forward(
        &self,
        url: &str,
        records: &[Map<String, Value>],
    ) -> Result<Vec<Forwarded>, String> {
        let body = serde_json::to_vec(&serde_json::json!({ "records": records }))
            .map_err(|e| e.to_string())?;
        let req = self
            .auth(self.agent.post(&format!("{url}/_dpyfs/raft/propose")))
            .set("Content-Type", "application/json")
            .timeout(Duration::from_millis(FORWARD_TIMEOUT_MS));
        let resp = match req.send_bytes(&body) {
            Ok(r) => r,
            Err(ureq::Error::Status(status, r)) => {
                let v: Value = serde_json::from_reader(r.into_reader()).unwrap_or(Value::Null);
                let code = v["code"].as_str().unwrap_or("InternalError").to_string();
                let msg = v["error"].as_str().unwrap_or("").to_string();
                return Ok(vec![Err((status, code, msg)); records.len()]);
            }
            Err(e) => return Err(e.to_string()),
        };
        let v: Value = serde_json::from_reader(resp.into_reader()).map_err(|e| e.to_string())?;
        let results = v["results"]
            .as_array()
            .filter(|r| r.len() == records.len())
            .ok_or("the leader's answer has no results")?;
        Ok(results.iter().map(parse_result).collect())
    }
}

fn parse_result(v: &Value) -> Forwarded {
    if let Some(seq) = v.get("seq").and_then(Value::as_u64) {
        return Ok(seq);
    }
    let status = v
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok())
        .unwrap_or(500);
    let code = v["code"].as_str().unwrap_or("InternalError").to_string();
    let msg = v["error"].as_str().unwrap_or("").to_string();
    Err((status, code, msg))
}
