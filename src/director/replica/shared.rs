//! What the director's threads share with the raft thread: the inbox (proposals, peer
//! messages, read-index requests, compaction requests), how far the index has applied,
//! and a view of the node's status. The raft thread alone owns the `raft::Node`; every
//! other thread talks to it through here, so no call ever lands between a `Ready` and
//! its `advance` (the durability contract in `src/raft/mod.rs`).

use super::transport::Peers;
use crate::director::error::{DirectorError, Result};
use crate::raft::{ConfigChange, Envelope, NodeId, Role};
use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// The raft thread's clock: one tick this often.
pub const TICK_MS: u64 = 50;
/// A follower campaigns after 20 to 40 ticks (1 to 2 s) without a leader; a leader steps
/// down after 20 ticks without hearing from a majority.
pub const ELECTION_TICKS: u64 = 20;
/// A leader sends heartbeats every 2 ticks (100 ms).
pub const HEARTBEAT_TICKS: u64 = 2;
pub const ENTRIES_PER_MESSAGE_MAX: u64 = 64;
/// A write waits at most this long for its record to be committed and applied.
pub const COMMIT_WAIT_MS: u64 = 10_000;
/// A write waits at most this long for a leader to be known (an election).
pub const LEADER_WAIT_MS: u64 = 3_000;
/// A read waits at most this long for the leader to confirm its read index.
pub const READ_WAIT_MS: u64 = 5_000;
/// Seconds a client is told to wait before retrying a write refused without a majority.
pub const RETRY_AFTER_SECS: u64 = 1;

/// A proposal's answer: its seq once applied, or why not.
pub type Reply = SyncSender<Result<u64>>;

/// A record to propose, as the journal's JSON.
pub struct Proposal {
    pub record: Vec<u8>,
    /// The store id of a `store_add`: the leader refuses it when that store is a member
    /// or joins in an entry not applied yet, so a store joins once however many
    /// directors see it first (each director's poller journals stores it discovers).
    pub adds_store: Option<String>,
    pub reply: Reply,
}

#[derive(Default)]
pub struct Inbox {
    pub proposals: Vec<Proposal>,
    pub messages: Vec<Envelope>,
    pub reads: Vec<Reply>,
    pub compactions: Vec<Reply>,
    /// `dpyfs admin director add/remove`, one voter at a time.
    pub changes: Vec<(ConfigChange, Reply)>,
}

/// The node's status as the raft thread last saw it.
#[derive(Clone, Debug)]
pub struct View {
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit: u64,
    pub last_index: u64,
    pub voters: Vec<NodeId>,
    /// (voter, highest index known to match); the leader's view only.
    pub matched: Vec<(NodeId, u64)>,
    /// The raft thread runs (after the group's voters are known).
    pub running: bool,
}

pub struct Replica {
    pub id: NodeId,
    pub peers: Arc<Peers>,
    /// `--peer` URLs, for the id probe.
    pub peer_urls: Vec<String>,
    inbox: Mutex<Inbox>,
    wake: Condvar,
    applied: Mutex<u64>,
    applied_cv: Condvar,
    view: Mutex<View>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The 503 of a write or read that cannot be served without a majority.
pub fn unavailable(why: &str) -> DirectorError {
    DirectorError::S3(
        503,
        "ServiceUnavailable",
        format!("{why}; nothing was stored, try again shortly (or another director)"),
    )
}

impl Replica {
    pub fn new(id: NodeId, peers: Arc<Peers>, peer_urls: Vec<String>, applied: u64) -> Replica {
        Replica {
            id,
            peers,
            peer_urls,
            inbox: Mutex::new(Inbox::default()),
            wake: Condvar::new(),
            applied: Mutex::new(applied),
            applied_cv: Condvar::new(),
            view: Mutex::new(View {
                role: Role::Follower,
                term: 0,
                leader: None,
                commit: 0,
                last_index: 0,
                voters: Vec::new(),
                matched: Vec::new(),
                running: false,
            }),
        }
    }

    pub fn view(&self) -> View {
        lock(&self.view).clone()
    }

    pub fn set_view(&self, v: View) {
        *lock(&self.view) = v;
    }

    /// A group of one: its own fsync commits, and its index is always current.
    pub fn is_single(&self) -> bool {
        let v = lock(&self.view);
        v.running && v.voters == [self.id]
    }

    pub fn is_leader(&self) -> bool {
        let v = lock(&self.view);
        v.running && v.role == Role::Leader
    }

    /// The leader's id, waiting up to `timeout` while there is none (an election).
    pub fn wait_leader(&self, timeout: Duration) -> Option<NodeId> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.view();
            if v.running {
                if let Some(id) = v.leader {
                    return Some(id);
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(TICK_MS / 2));
        }
    }

    fn push(&self, f: impl FnOnce(&mut Inbox)) {
        f(&mut lock(&self.inbox));
        self.wake.notify_one();
    }

    /// Hands a proposal to the raft thread; the receiver gets its seq once applied.
    pub fn propose(&self, record: Vec<u8>, adds_store: Option<String>) -> Receiver<Result<u64>> {
        let (reply, rx) = sync_channel(1);
        self.push(|i| {
            i.proposals.push(Proposal {
                record,
                adds_store,
                reply,
            })
        });
        rx
    }

    pub fn deliver(&self, messages: Vec<Envelope>) {
        self.push(|i| i.messages.extend(messages));
    }

    /// Asks for a read index (the leader's commit point, confirmed by a majority).
    pub fn read_index(&self) -> Receiver<Result<u64>> {
        let (tx, rx) = sync_channel(1);
        self.push(|i| i.reads.push(tx));
        rx
    }

    /// Hands a change of voters to the raft thread; the receiver gets the seq of its
    /// `directors` record once applied.
    pub fn change(&self, change: ConfigChange) -> Receiver<Result<u64>> {
        let (tx, rx) = sync_channel(1);
        self.push(|i| i.changes.push((change, tx)));
        rx
    }

    pub fn request_compaction(&self) -> Receiver<Result<u64>> {
        let (tx, rx) = sync_channel(1);
        self.push(|i| i.compactions.push(tx));
        rx
    }

    /// The raft thread takes the inbox, waiting at most `until` for something to arrive.
    pub fn take_inbox(&self, until: Instant) -> Inbox {
        let mut g = lock(&self.inbox);
        loop {
            let empty = g.proposals.is_empty()
                && g.messages.is_empty()
                && g.reads.is_empty()
                && g.compactions.is_empty()
                && g.changes.is_empty();
            let now = Instant::now();
            if !empty || now >= until {
                return std::mem::take(&mut *g);
            }
            g = self
                .wake
                .wait_timeout(g, until - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    pub fn applied(&self) -> u64 {
        *lock(&self.applied)
    }

    pub fn set_applied(&self, seq: u64) {
        *lock(&self.applied) = seq;
        self.applied_cv.notify_all();
    }

    /// Waits until the index has applied `seq`.
    pub fn wait_applied(&self, seq: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut g = lock(&self.applied);
        while *g < seq {
            let now = Instant::now();
            if now >= deadline {
                return Err(unavailable(
                    "this director did not catch up with the leader in time",
                ));
            }
            g = self
                .applied_cv
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        Ok(())
    }

    /// Waits for a reply from the raft thread; a dropped sender means the outcome is
    /// unknown (leadership changed).
    pub fn wait_reply(rx: &Receiver<Result<u64>>, timeout: Duration) -> Result<u64> {
        match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(_) => Err(unavailable(
                "no majority of directors confirmed this in time (leadership may have changed)",
            )),
        }
    }

    /// Peers by id with their URL and whether they answered lately, for status.
    pub fn peers_by_id(&self) -> BTreeMap<NodeId, (String, bool)> {
        let within = Duration::from_millis(TICK_MS * ELECTION_TICKS);
        self.peers
            .views(within)
            .into_iter()
            .map(|p| (p.id, (p.url, p.up)))
            .collect()
    }

    /// `role`, `term`, `leader` (its URL, or null), `director_id`, `commit`, `applied`
    /// and `directors` (id, URL, up, how many entries behind the leader; the leader
    /// knows how far each is) for `/_dpyfs/status`.
    pub fn status_fields(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let v = self.view();
        let peers = self.peers_by_id();
        let url_of = |id: NodeId| {
            if id == self.id {
                Some(self.peers.my_url().to_string())
            } else {
                peers.get(&id).map(|(u, _)| u.clone())
            }
        };
        let role = match (v.running, v.role) {
            (false, _) => "starting",
            (_, Role::Leader) => "leader",
            (_, Role::Candidate | Role::PreCandidate) => "candidate",
            (_, Role::Follower) => "follower",
        };
        let directors: Vec<serde_json::Value> = v
            .voters
            .iter()
            .map(|id| {
                let matched = v.matched.iter().find(|(m, _)| m == id).map(|(_, i)| *i);
                let behind = match (v.role, matched) {
                    (Role::Leader, Some(m)) => json!(v.last_index.saturating_sub(m)),
                    (Role::Leader, None) if *id == self.id => json!(0),
                    _ => serde_json::Value::Null,
                };
                let up = *id == self.id || peers.get(id).is_some_and(|(_, up)| *up);
                json!({"id": id, "url": url_of(*id), "up": up, "behind": behind})
            })
            .collect();
        let mut m = serde_json::Map::new();
        m.insert("director_id".into(), json!(self.id));
        m.insert("role".into(), json!(role));
        m.insert("term".into(), json!(v.term));
        m.insert("leader".into(), json!(v.leader.and_then(url_of)));
        m.insert("commit".into(), json!(v.commit));
        m.insert("applied".into(), json!(self.applied()));
        m.insert("directors".into(), json!(directors));
        m
    }
}
