//! The raft thread: it alone owns the `raft::Node` and drives it by the durability
//! contract of `src/raft/mod.rs` — take the inbox, tick, then for every `Ready`: store
//! the term and vote, cut, install, append and fsync the journal, send, apply the
//! committed entries to the index, answer proposals and reads, `advance`.

use super::boot::{Boot, apply_entry};
use super::members::{change_refused, check_majority_after};
use super::shared::{
    ELECTION_TICKS, ENTRIES_PER_MESSAGE_MAX, HEARTBEAT_TICKS, Inbox, Reply, TICK_MS, View,
    unavailable,
};
use super::state::{self, RAFT_STATE_FORMAT, RaftState};
use super::wire::entry_to_record;
use crate::director::Director;
use crate::director::error::{DirectorError, Result};
use crate::director::meta::index::Index;
use crate::raft::{ConfigChange, Node, NodeId, Options, Proposed, Ready, Role, Snapshot};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A stored commit point lags the real one by at most this (it is a hint for the
/// replay at start; raft learns the rest from the leader).
const COMMIT_STORE_MS: u64 = 1_000;

/// The raft thread's own bookkeeping beside the node.
struct Loop {
    node: Node,
    /// Proposals by index, with the term they were proposed in.
    waiters: BTreeMap<u64, (u64, Reply)>,
    reads: BTreeMap<u64, Reply>,
    next_ctx: u64,
    /// Peers (voters) heard from, for the leader's refusal to take writes it cannot
    /// commit.
    heard: BTreeMap<NodeId, Instant>,
    voters: Vec<NodeId>,
    stored: RaftState,
    stored_at: Instant,
    compact_due: bool,
    /// A blank director whose peers hold records grants no vote before its commit point
    /// reaches this (see `Boot::blank`); 0 once caught up.
    catch_up_to: u64,
    /// The state machine at the node's snapshot, kept to rebuild the node after a failed
    /// write (the node does not hand its snapshot's data back).
    snapshot_data: Vec<u8>,
}

/// After a journal write failed (a full disk), the raft thread waits this long before it
/// tries again, so that a full disk does not spin elections.
const PERSIST_RETRY_MS: u64 = 500;

fn options() -> Options {
    Options {
        election_ticks: ELECTION_TICKS,
        heartbeat_ticks: HEARTBEAT_TICKS,
        entries_per_message_max: ENTRIES_PER_MESSAGE_MAX,
        seed: state::random_u64(),
    }
}

/// A group of one elects itself at once rather than after a timeout.
fn elect_if_single(node: &mut Node) {
    if node.status().config == [node.id()] {
        for _ in 0..=2 * ELECTION_TICKS {
            if node.role() == Role::Leader {
                break;
            }
            node.tick();
        }
    }
}

impl Director {
    /// Starts the raft thread (after learning the group's voters if it is new).
    pub fn start_replica(self: &Arc<Self>) -> Result<()> {
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("raft".into())
            .spawn(move || me.replica_main())
            .map(|_| ())
            .map_err(|e| DirectorError::Internal(format!("cannot start the raft thread: {e}")))
    }

    fn replica_main(self: &Arc<Self>) {
        let Some(mut boot) = self.boot.lock().unwrap_or_else(|p| p.into_inner()).take() else {
            return;
        };
        let catch_up_to = self.probe_peers(&mut boot);
        let r = &self.replica;
        let stored = RaftState {
            format: RAFT_STATE_FORMAT,
            term: boot.restored.hard_state.term,
            voted_for: boot.restored.hard_state.voted_for,
            commit: boot.restored.commit,
            voters: boot.restored.snapshot.meta.config.clone(),
        };
        let snapshot_data = boot.restored.snapshot.data.clone();
        let mut node = Node::new(r.id, options(), boot.restored);
        elect_if_single(&mut node);
        let mut lp = Loop {
            voters: node.status().config,
            node,
            waiters: BTreeMap::new(),
            reads: BTreeMap::new(),
            next_ctx: 1,
            heard: BTreeMap::new(),
            stored,
            stored_at: Instant::now(),
            compact_due: false,
            snapshot_data,
            catch_up_to,
        };
        log::info!(
            "director {} in a group of {} (voters {:?})",
            r.id,
            lp.voters.len(),
            lp.voters
        );
        if let Err(e) = self.run_loop(&mut lp) {
            // The journal or the state file failed: nothing more may be promised.
            log::error!("raft stopped: {e}; restart the director");
        }
        let mut v = r.view();
        v.running = false;
        r.set_view(v);
    }

    /// Learns the ids of the `--peer` URLs: for a new group they are its voters (all of
    /// them are needed before the first election); a running group learns URLs this way
    /// too, in the background.
    fn probe_peers(self: &Arc<Self>, boot: &mut Boot) -> u64 {
        let r = &self.replica;
        let mut known: BTreeMap<String, NodeId> = BTreeMap::new();
        let mut longest = 0u64;
        // The voters of a group that already runs, as a peer reported them.
        let mut running: Option<Vec<NodeId>> = None;
        loop {
            for url in &r.peer_urls {
                if known.contains_key(url) {
                    continue;
                }
                match r.peers.probe(url) {
                    Ok(p) => {
                        r.peers.learn(p.id, url);
                        self.learn_peers(&p.peers);
                        known.insert(url.clone(), p.id);
                        longest = longest.max(p.last_index);
                        if !p.voters.is_empty() {
                            running.get_or_insert(p.voters);
                        }
                    }
                    Err(e) => log::debug!("director at {url} does not answer yet: {e}"),
                }
            }
            if boot.voters_known || running.is_some() || known.len() == r.peer_urls.len() {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        if !boot.voters_known {
            let voters = match running {
                // A running group that counts this director (it lost its data folder).
                Some(v) if v.contains(&r.id) => v,
                // A running group without it: it votes in nothing until `dpyfs admin
                // director add` names it, and learns the log from the leader then.
                Some(v) => {
                    log::warn!(
                        "the directors at --peer run a group of {} without this director ({}):                          it waits until `dpyfs admin director add {}` adds it",
                        v.len(),
                        r.id,
                        r.peers.my_url()
                    );
                    Vec::new()
                }
                None => {
                    let mut v: Vec<NodeId> = known.values().copied().chain([r.id]).collect();
                    v.sort_unstable();
                    v.dedup();
                    v
                }
            };
            boot.restored.snapshot.meta.config = voters;
            boot.voters_known = true;
        }
        if known.len() < r.peer_urls.len() {
            let me = Arc::clone(self);
            let _ = std::thread::Builder::new()
                .name("raft-probe".into())
                .spawn(move || me.probe_rest(known));
        }
        if boot.blank && longest > 0 {
            log::warn!(
                "this director starts blank but its peers hold {longest} records: it votes \
                 only once it has caught up"
            );
            return longest;
        }
        0
    }

    /// Notes the URLs a peer knows for other directors (not for this one).
    fn learn_peers(&self, urls: &BTreeMap<NodeId, String>) {
        for (id, url) in urls {
            if *id != self.replica.id {
                self.replica.peers.learn(*id, url);
            }
        }
    }

    fn probe_rest(&self, mut known: BTreeMap<String, NodeId>) {
        let r = &self.replica;
        while known.len() < r.peer_urls.len() {
            std::thread::sleep(Duration::from_millis(1_000));
            for url in &r.peer_urls {
                if !known.contains_key(url) {
                    if let Ok(p) = r.peers.probe(url) {
                        r.peers.learn(p.id, url);
                        self.learn_peers(&p.peers);
                        known.insert(url.clone(), p.id);
                    }
                }
            }
        }
    }

    /// A voter whose URL this director does not know (added through another director):
    /// asked of the peers it knows, in the background.
    fn learn_missing_urls(self: &Arc<Self>, voters: &[NodeId]) {
        let urls = self.replica.peers.urls();
        let me = self.replica.id;
        let missing: Vec<NodeId> = voters
            .iter()
            .copied()
            .filter(|v| *v != me && !urls.contains_key(v))
            .collect();
        if missing.is_empty() {
            return;
        }
        let d = Arc::clone(self);
        let _ = std::thread::Builder::new()
            .name("raft-urls".into())
            .spawn(move || {
                for url in urls.values() {
                    if let Ok(p) = d.replica.peers.probe(url) {
                        d.learn_peers(&p.peers);
                    }
                    let now = d.replica.peers.urls();
                    if missing.iter().all(|m| now.contains_key(m)) {
                        return;
                    }
                }
                log::warn!("no peer knows the URL of director(s) {missing:?} yet");
            });
    }

    fn run_loop(self: &Arc<Self>, lp: &mut Loop) -> Result<()> {
        let tick = Duration::from_millis(TICK_MS);
        let mut next_tick = Instant::now() + tick;
        self.publish(lp);
        loop {
            let inbox = self.replica.take_inbox(next_tick);
            if Instant::now() >= next_tick {
                lp.node.tick();
                next_tick += tick;
                if next_tick < Instant::now() {
                    next_tick = Instant::now() + tick;
                }
            }
            let was_leader = lp.node.role() == Role::Leader;
            let leader_before = lp.node.status().leader;
            self.take(lp, inbox);
            while lp.node.has_ready() {
                let rd = lp.node.ready();
                let done = self.handle_ready(lp, rd);
                lp.node.advance();
                if let Err(e) = done {
                    self.restart_node(lp, &e)?;
                    break;
                }
            }
            // A change of voters takes effect once appended (before it commits).
            let voters = lp.node.status().config;
            if voters != lp.voters {
                self.learn_missing_urls(&voters);
                lp.voters = voters;
            }
            if lp.compact_due {
                lp.compact_due = false;
                self.compact_now(lp, None);
            }
            if was_leader && lp.node.role() != Role::Leader {
                // Proposals in flight: their outcome is unknown; the clients hear 503.
                lp.waiters.clear();
                lp.reads.clear();
            }
            if lp.node.status().leader != leader_before {
                // Read indexes asked of a leader that is gone will never come back.
                lp.reads.clear();
            }
            self.publish(lp);
        }
    }

    /// Steps messages, proposes, asks for read indexes, compacts.
    fn take(&self, lp: &mut Loop, inbox: Inbox) {
        if lp.catch_up_to > 0 && lp.node.status().commit >= lp.catch_up_to {
            lp.catch_up_to = 0;
        }
        for m in inbox.messages {
            use crate::raft::Message;
            if matches!(m.message, Message::AppendResp { .. }) {
                lp.heard.insert(m.from, Instant::now());
            }
            let vote = matches!(m.message, Message::Vote { .. } | Message::PreVote { .. });
            if vote && lp.catch_up_to > 0 {
                continue;
            }
            lp.node.step(m);
        }
        for p in inbox.proposals {
            if !self.majority_heard(lp) {
                let _ = p.reply.send(Err(unavailable(
                    "this director leads no majority of directors right now",
                )));
                continue;
            }
            if let Some(id) = p
                .adds_store
                .as_deref()
                .filter(|id| self.store_joins(lp, id))
            {
                let _ = p.reply.send(Err(DirectorError::BadRequest(
                    "StoreExists",
                    format!("store '{id}' is already a member"),
                )));
                continue;
            }
            match lp.node.propose(p.record) {
                Ok(at) => {
                    lp.waiters.insert(at.index, (at.term, p.reply));
                }
                Err(_) => {
                    let _ = p
                        .reply
                        .send(Err(unavailable("this director is not the leader")));
                }
            }
        }
        for reply in inbox.reads {
            let ctx = lp.next_ctx;
            lp.next_ctx += 1;
            match lp.node.read_index(ctx) {
                Ok(()) => {
                    lp.reads.insert(ctx, reply);
                }
                Err(_) => {
                    let _ = reply.send(Err(unavailable("no leader is known")));
                }
            }
        }
        for (change, reply) in inbox.changes {
            match self.propose_change(lp, change) {
                Ok(at) => {
                    lp.waiters.insert(at.index, (at.term, reply));
                }
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            }
        }
        for reply in inbox.compactions {
            self.compact_now(lp, Some(reply));
        }
    }

    /// Whether store `id` is a member, or joins in an entry of the log not applied yet
    /// (this thread alone applies, so the index is exactly the applied entries).
    fn store_joins(&self, lp: &Loop, id: &str) -> bool {
        if self.read_index().members.contains_key(id) {
            return true;
        }
        let applied = self.replica.applied();
        lp.node
            .entries()
            .iter()
            .filter(|e| e.index > applied)
            .any(|e| match &e.data {
                crate::raft::EntryData::Command(bytes) => {
                    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(bytes)
                        .ok()
                        .and_then(|m| super::commit::store_added(&m))
                        .is_some_and(|added| added == id)
                }
                _ => false,
            })
    }

    /// Proposes a change of voters, refused when the group would have no majority
    /// answering afterwards (see `members.rs`).
    fn propose_change(&self, lp: &mut Loop, change: ConfigChange) -> Result<Proposed> {
        if !self.majority_heard(lp) {
            return Err(unavailable(
                "this director leads no majority of directors right now",
            ));
        }
        let within = Duration::from_millis(TICK_MS * ELECTION_TICKS);
        let me = self.replica.id;
        check_majority_after(&lp.voters, change, |v| {
            v == me || lp.heard.get(&v).is_some_and(|t| t.elapsed() < within)
        })?;
        lp.node
            .propose_change(change)
            .map_err(|e| change_refused(e, change))
    }

    /// A leader takes a write only while a majority (itself included) answered within an
    /// election timeout, so a leader cut off journals nothing new.
    fn majority_heard(&self, lp: &Loop) -> bool {
        let within = Duration::from_millis(TICK_MS * ELECTION_TICKS);
        let me = self.replica.id;
        let heard = lp
            .voters
            .iter()
            .filter(|v| **v == me || lp.heard.get(v).is_some_and(|t| t.elapsed() < within))
            .count();
        heard > lp.voters.len() / 2
    }

    fn handle_ready(&self, lp: &mut Loop, rd: Ready) -> Result<()> {
        let dir = &self.cfg.data;
        if let Some(hs) = rd.hard_state {
            let next = RaftState {
                term: hs.term,
                voted_for: hs.voted_for,
                ..lp.stored.clone()
            };
            state::store(dir, &next)?;
            lp.stored = next;
            lp.stored_at = Instant::now();
        }
        if let Some(from) = rd.truncate_from {
            self.journal.truncate_from(from)?;
        }
        if let Some(s) = &rd.snapshot {
            self.store_snapshot(s)?;
        }
        if let Some(last) = rd.entries.last().map(|e| e.index) {
            for e in &rd.entries {
                let rec = entry_to_record(e).map_err(DirectorError::Internal)?;
                self.journal.write_at(e.index, rec)?;
            }
            self.journal.wait(last)?;
        }
        if let Some(commit) = rd.commit {
            let stale = lp.stored_at.elapsed() >= Duration::from_millis(COMMIT_STORE_MS);
            if stale && commit > lp.stored.commit {
                lp.stored.commit = commit;
                state::store(dir, &lp.stored)?;
                lp.stored_at = Instant::now();
            }
        }
        self.replica.peers.send(rd.messages);
        if let Some(s) = &rd.snapshot {
            self.install_index(s)?;
            lp.snapshot_data = s.data.clone();
        }
        self.apply_committed(lp, &rd.committed);
        for read in rd.reads {
            if let Some(reply) = lp.reads.remove(&read.ctx) {
                let _ = reply.send(Ok(read.index));
            }
        }
        Ok(())
    }

    /// A write of a `Ready` failed (a full disk; nothing was sent): the node is rebuilt
    /// from what the journal and the state file hold, and the proposals whose records
    /// did not reach the journal are refused with the error. Only a failed fsync, which
    /// stops the journal for good, ends the raft thread.
    fn restart_node(&self, lp: &mut Loop, e: &DirectorError) -> Result<()> {
        if let DirectorError::Journal(crate::director::meta::journal::JournalError::Stopped(_)) = e
        {
            return Err(DirectorError::Internal(e.to_string()));
        }
        log::error!("raft: a write failed: {e}; the node restarts from the journal");
        let last = self.journal.last_seq();
        let (status, code) = e.status_and_code();
        let refused: Vec<u64> = lp.waiters.range(last + 1..).map(|(i, _)| *i).collect();
        for index in refused {
            if let Some((_, reply)) = lp.waiters.remove(&index) {
                let _ = reply.send(Err(DirectorError::S3(status, code, e.client_message())));
            }
        }
        let meta = lp.node.snapshot_meta().clone();
        let entries: Vec<crate::raft::Entry> = lp
            .node
            .entries()
            .iter()
            .filter(|x| x.index <= last)
            .cloned()
            .collect();
        let applied = self.replica.applied();
        let restored = crate::raft::Restored {
            hard_state: crate::raft::HardState {
                term: lp.stored.term,
                voted_for: lp.stored.voted_for,
            },
            commit: lp.node.status().commit.min(last).max(applied),
            snapshot: Snapshot {
                meta,
                data: lp.snapshot_data.clone(),
            },
            entries,
            applied,
        };
        lp.node = Node::new(self.replica.id, options(), restored);
        elect_if_single(&mut lp.node);
        lp.reads.clear();
        std::thread::sleep(Duration::from_millis(PERSIST_RETRY_MS));
        Ok(())
    }

    fn store_snapshot(&self, s: &Snapshot) -> Result<()> {
        let state: serde_json::Value = serde_json::from_slice(&s.data)
            .map_err(|e| DirectorError::Internal(format!("a snapshot from the leader: {e}")))?;
        self.journal
            .install_snapshot(s.meta.index, (s.meta.term, &s.meta.config), &state)?;
        Ok(())
    }

    fn install_index(&self, s: &Snapshot) -> Result<()> {
        let state: serde_json::Value = serde_json::from_slice(&s.data)
            .map_err(|e| DirectorError::Internal(format!("a snapshot from the leader: {e}")))?;
        let index = if state.is_null() {
            Index::default()
        } else {
            Index::from_snapshot(&state).map_err(DirectorError::Internal)?
        };
        let mut idx = self.index.write().unwrap_or_else(|p| p.into_inner());
        *idx = index;
        self.stores.sync_members(&idx.members);
        drop(idx);
        self.replica.set_applied(s.meta.index);
        Ok(())
    }

    fn apply_committed(&self, lp: &mut Loop, committed: &[crate::raft::Entry]) {
        let Some(last) = committed.last().map(|e| e.index) else {
            return;
        };
        let mut results = Vec::new();
        {
            let mut idx = self.index.write().unwrap_or_else(|p| p.into_inner());
            for e in committed {
                let result = apply_entry(&mut idx, e);
                if let Ok(Some(rec)) = &result {
                    if rec.is_membership() {
                        self.stores.sync_members(&idx.members);
                    }
                }
                results.push((e.index, e.term, result));
            }
        }
        self.replica.set_applied(last);
        for (index, term, result) in results {
            let Some((want, reply)) = lp.waiters.remove(&index) else {
                continue;
            };
            if want == term {
                let _ = reply.send(result.map(|_| index));
            }
            // Another entry took the index: the proposal was lost with its leader, and
            // dropping the reply tells its client so (503, outcome unknown).
        }
        if self.journal.bytes() >= self.cfg.compact_bytes {
            lp.compact_due = true;
        }
    }

    /// Snapshots the index at the applied point (nothing applies meanwhile: this is the
    /// only thread that applies), then lets raft forget the entries it covers.
    fn compact_now(&self, lp: &mut Loop, reply: Option<Reply>) {
        let seq = self.replica.applied();
        let result = self.compact_at(lp, seq);
        if let Err(e) = &result {
            log::error!("journal compaction failed: {e}");
        }
        if let Some(reply) = reply {
            let _ = reply.send(result.map(|_| seq));
        }
    }

    fn compact_at(&self, lp: &mut Loop, seq: u64) -> Result<()> {
        let state = self
            .read_index()
            .to_snapshot()
            .map_err(DirectorError::Internal)?;
        let term = lp.node.entry_term(seq).unwrap_or(0);
        let voters = lp.voters.clone();
        self.journal
            .snapshot_raft(seq, Some((term, &voters)), &state)?;
        if term > 0 {
            let data =
                serde_json::to_vec(&state).map_err(|e| DirectorError::Internal(e.to_string()))?;
            lp.snapshot_data = data.clone();
            lp.node.compact(seq, data);
        }
        Ok(())
    }

    /// Publishes the node's status for requests and `/_dpyfs/status`.
    fn publish(&self, lp: &Loop) {
        let s = lp.node.status();
        self.replica.set_view(View {
            role: s.role,
            term: s.term,
            leader: s.leader,
            commit: s.commit,
            last_index: s.last_index,
            voters: s.config,
            matched: s.matched,
            running: true,
        });
    }
}
