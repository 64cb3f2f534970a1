//! One Raft node: roles, elections, replication, commit, reads and membership. Comments
//! cite the paper (figure 2) and the thesis where a rule is easy to get subtly wrong.

use std::collections::{BTreeMap, VecDeque};

use super::log::Log;
use super::rng::Rng;
use super::types::{
    ConfigChange, Entry, EntryData, Envelope, HardState, Message, NodeId, Options, ProposeError,
    Proposed, ReadState, Ready, Restored, Role, SnapshotMeta, Status,
};

/// The leader's view of one follower.
struct Progress {
    /// The next index to send (optimistic: advanced when sent, moved back on a refusal).
    next: u64,
    /// The highest index known to match the leader's log.
    matched: u64,
    /// Heard from since the last check-quorum round.
    active: bool,
    /// The highest read round this follower has acknowledged in the current term.
    read_seq: u64,
}

/// A read waiting for a majority to confirm the leadership it was taken under.
struct PendingRead {
    seq: u64,
    index: u64,
    ctx: u64,
    from: NodeId,
}

pub struct Node {
    id: NodeId,
    opts: Options,
    rng: Rng,
    term: u64,
    voted_for: Option<NodeId>,
    /// The hard state and commit point last handed to the caller to persist.
    persisted: HardState,
    persisted_commit: u64,
    role: Role,
    leader: Option<NodeId>,
    log: Log,
    commit: u64,
    /// Handed to the caller to apply (the snapshot or committed entries).
    applied: u64,
    election_elapsed: u64,
    election_timeout: u64,
    heartbeat_elapsed: u64,
    quorum_elapsed: u64,
    votes: BTreeMap<NodeId, bool>,
    progress: BTreeMap<NodeId, Progress>,
    read_seq: u64,
    reads_pending: VecDeque<PendingRead>,
    /// Reads that arrived before this leader committed an entry of its term.
    reads_waiting: Vec<(u64, NodeId)>,
    reads_ready: Vec<ReadState>,
    outbox: Vec<Envelope>,
    /// The log's last index when a `Ready` was handed out and not yet `advance`d.
    outstanding: Option<u64>,
}

impl Node {
    pub fn new(id: NodeId, opts: Options, restored: Restored) -> Node {
        assert!(id != 0);
        assert!(opts.election_ticks > opts.heartbeat_ticks);
        assert!(opts.heartbeat_ticks > 0);
        assert!(opts.entries_per_message_max > 0);
        let hs = restored.hard_state;
        let log = Log::restored(restored.snapshot, restored.entries);
        assert!(log.last_term() <= hs.term);
        assert!(restored.applied >= log.snapshot_index());
        assert!(restored.applied <= log.last_index());
        let commit = restored.commit.min(log.last_index()).max(restored.applied);
        let mut node = Node {
            id,
            rng: Rng::new(opts.seed),
            opts,
            term: hs.term,
            voted_for: hs.voted_for,
            persisted: hs,
            persisted_commit: commit,
            role: Role::Follower,
            leader: None,
            log,
            commit,
            applied: restored.applied,
            election_elapsed: 0,
            election_timeout: 0,
            heartbeat_elapsed: 0,
            quorum_elapsed: 0,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            read_seq: 0,
            reads_pending: VecDeque::new(),
            reads_waiting: Vec::new(),
            reads_ready: Vec::new(),
            outbox: Vec::new(),
            outstanding: None,
        };
        node.reset_election_timer();
        node
    }

    // ---- the caller's interface -------------------------------------------------------

    pub fn status(&self) -> Status {
        Status {
            id: self.id,
            role: self.role,
            term: self.term,
            leader: self.leader,
            commit: self.commit,
            applied: self.applied,
            last_index: self.log.last_index(),
            config: self.log.config().to_vec(),
            matched: self
                .progress
                .iter()
                .map(|(id, p)| (*id, p.matched))
                .collect(),
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn term(&self) -> u64 {
        self.term
    }

    /// The term of the entry at `index`, if the log still holds it (or its snapshot ends
    /// there).
    pub fn entry_term(&self, index: u64) -> Option<u64> {
        self.log.term_at(index)
    }

    /// The entries after the snapshot, for checks and for serving catch-up by hand.
    pub fn entries(&self) -> &[Entry] {
        self.log.entries()
    }

    pub fn snapshot_meta(&self) -> &SnapshotMeta {
        &self.log.snapshot().meta
    }

    /// Advances time by one tick.
    pub fn tick(&mut self) {
        self.assert_no_ready_outstanding();
        if self.role == Role::Leader {
            self.tick_leader();
            return;
        }
        self.election_elapsed += 1;
        if self.election_elapsed >= self.election_timeout && self.may_campaign() {
            self.start_pre_vote();
        }
    }

    /// Takes a message from another node. Peers are trusted to run this same code (the
    /// transport authenticates them): a message that breaks one of Raft's invariants, such
    /// as a second leader in a term, panics here rather than corrupt the log. A message
    /// addressed to another node (a peer that has not caught up with a move) is dropped.
    pub fn step(&mut self, envelope: Envelope) {
        self.assert_no_ready_outstanding();
        if envelope.to != self.id {
            return;
        }
        if !self.step_term(&envelope) {
            return;
        }
        let from = envelope.from;
        match envelope.message {
            Message::PreVote {
                last_index,
                last_term,
            } => self.on_pre_vote(from, envelope.term, last_index, last_term),
            Message::PreVoteResp { granted } => self.on_pre_vote_resp(from, envelope.term, granted),
            Message::Vote {
                last_index,
                last_term,
            } => self.on_vote(from, last_index, last_term),
            Message::VoteResp { granted } => self.on_vote_resp(from, granted),
            Message::Append {
                prev_index,
                prev_term,
                entries,
                commit,
                read_seq,
            } => {
                self.follow(from);
                self.on_append(from, prev_index, prev_term, entries, commit, read_seq);
            }
            Message::AppendResp {
                success,
                index,
                rejected,
                read_seq,
            } => self.on_append_resp(from, success, index, rejected, read_seq),
            Message::InstallSnapshot { snapshot, read_seq } => {
                self.follow(from);
                self.on_snapshot(from, snapshot, read_seq);
            }
            Message::ReadIndex { ctx } => self.on_read_index(from, ctx),
            Message::ReadIndexResp { ctx, index } => {
                self.reads_ready.push(ReadState { ctx, index });
            }
        }
    }

    /// Appends a command; only the leader accepts one.
    pub fn propose(&mut self, command: Vec<u8>) -> Result<Proposed, ProposeError> {
        self.assert_no_ready_outstanding();
        self.check_leader()?;
        Ok(self.append_and_send(EntryData::Command(command)))
    }

    /// Adds or removes one voter. Refused while another change is uncommitted, and before
    /// the leader has committed an entry of its own term: without that rule two one-server
    /// changes from different terms can produce disjoint majorities (the bug Ongaro
    /// reported on raft-dev in 2015).
    pub fn propose_change(&mut self, change: ConfigChange) -> Result<Proposed, ProposeError> {
        self.assert_no_ready_outstanding();
        self.check_leader()?;
        if self.log.config_index() > self.commit || !self.committed_in_term() {
            return Err(ProposeError::ChangeInProgress);
        }
        let mut voters = self.log.config().to_vec();
        match change {
            ConfigChange::Add(id) if !voters.contains(&id) && id != 0 => voters.push(id),
            ConfigChange::Remove(id) if voters.contains(&id) => voters.retain(|v| *v != id),
            _ => return Err(ProposeError::Unchanged),
        }
        voters.sort_unstable();
        Ok(self.append_and_send(EntryData::Config(voters)))
    }

    /// Asks for a linearizable read on behalf of client `ctx`: a `ReadState` with the same
    /// `ctx` comes back in a later `Ready` once a majority has confirmed the leadership.
    /// A follower forwards it to the leader; if that leader is gone, nothing comes back
    /// and the caller retries after its own timeout.
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ProposeError> {
        self.assert_no_ready_outstanding();
        if self.role == Role::Leader {
            self.leader_read(ctx, self.id);
            return Ok(());
        }
        let Some(leader) = self.leader else {
            return Err(ProposeError::NotLeader { leader: None });
        };
        self.send(leader, Message::ReadIndex { ctx });
        Ok(())
    }

    /// Forgets the entries up to `index`, which the caller's snapshot `data` (its state
    /// machine after `index`) now covers; returns what the caller stores beside `data`.
    /// The caller makes the snapshot durable before it deletes the entries it covers.
    pub fn compact(&mut self, index: u64, data: Vec<u8>) -> Option<SnapshotMeta> {
        self.assert_no_ready_outstanding();
        assert!(index <= self.applied);
        if index <= self.log.snapshot_index() {
            return None;
        }
        Some(self.log.compact(index, data))
    }

    pub fn has_ready(&self) -> bool {
        self.log.has_unstable()
            || self.hard_state() != self.persisted
            || self.commit != self.persisted_commit
            || self.commit > self.applied
            || !self.outbox.is_empty()
            || !self.reads_ready.is_empty()
    }

    /// Hands out what to persist, send and apply; `advance` must follow before any other
    /// call.
    pub fn ready(&mut self) -> Ready {
        self.assert_no_ready_outstanding();
        let hs = self.hard_state();
        let hard_state = (hs != self.persisted).then_some(hs);
        self.persisted = hs;
        let commit = (self.commit != self.persisted_commit).then_some(self.commit);
        self.persisted_commit = self.commit;
        let unstable = self.log.take_unstable();
        if let Some(snapshot) = &unstable.snapshot {
            assert!(snapshot.meta.index <= self.commit);
            self.applied = self.applied.max(snapshot.meta.index);
        }
        let mut committed = Vec::new();
        if self.commit > self.applied {
            committed = self.log.slice(self.applied + 1, self.commit);
            self.applied = self.commit;
        }
        self.outstanding = Some(self.log.last_index());
        Ready {
            hard_state,
            truncate_from: unstable.truncate_from,
            snapshot: unstable.snapshot,
            entries: unstable.entries,
            commit,
            messages: std::mem::take(&mut self.outbox),
            committed,
            reads: std::mem::take(&mut self.reads_ready),
        }
    }

    /// The caller has persisted, sent and applied the last `Ready`.
    pub fn advance(&mut self) {
        let outstanding = self.outstanding.take();
        assert!(outstanding.is_some());
        self.log.stable_to(outstanding.unwrap_or(0));
        if self.role == Role::Leader {
            // The leader's own log now counts towards a majority.
            self.maybe_commit();
        }
    }

    // ---- terms and roles --------------------------------------------------------------

    /// The term and vote (what the caller last persisted, once `advance` has run).
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            voted_for: self.voted_for,
        }
    }

    fn assert_no_ready_outstanding(&self) {
        assert!(self.outstanding.is_none());
    }

    fn is_voter(&self) -> bool {
        self.log.config().contains(&self.id)
    }

    /// A voter campaigns; so does a server whose removal is not committed yet (thesis
    /// section 4.2.2): a leader that removed itself and lost its leadership before the
    /// removal committed may hold the only up-to-date log, and the remaining voters then
    /// need it to lead long enough to commit its own removal.
    fn may_campaign(&self) -> bool {
        self.is_voter() || self.log.config_at(self.commit).contains(&self.id)
    }

    fn quorum(&self) -> usize {
        self.log.config().len() / 2 + 1
    }

    fn committed_in_term(&self) -> bool {
        self.log.term_at(self.commit) == Some(self.term)
    }

    /// Whether a leader has been heard from within the minimum election timeout: while it
    /// has, vote requests are ignored, so a server that was cut off or removed cannot
    /// depose a working leader (thesis section 4.2.3).
    fn in_lease(&self) -> bool {
        self.role == Role::Leader
            || (self.leader.is_some() && self.election_elapsed < self.opts.election_ticks)
    }

    fn check_leader(&self) -> Result<(), ProposeError> {
        if self.role == Role::Leader {
            return Ok(());
        }
        Err(ProposeError::NotLeader {
            leader: self.leader,
        })
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        self.election_timeout = self.opts.election_ticks + self.rng.below(self.opts.election_ticks);
    }

    /// Applies the term rules common to every message; false when the message is done with.
    fn step_term(&mut self, envelope: &Envelope) -> bool {
        let message = &envelope.message;
        if envelope.term > self.term {
            match message {
                // A pre-vote asks about a future term and changes nobody's term; a granted
                // pre-vote answer carries the term we asked about.
                Message::PreVote { .. } | Message::PreVoteResp { granted: true } => {}
                Message::Vote { .. } if self.in_lease() => return false,
                Message::Append { .. } | Message::InstallSnapshot { .. } => {
                    self.become_follower(envelope.term, Some(envelope.from));
                }
                _ => self.become_follower(envelope.term, None),
            }
            return true;
        }
        if envelope.term < self.term {
            match message {
                // A stale leader (back from a partition) learns the new term from the
                // refusal and steps down.
                Message::Append { .. } | Message::InstallSnapshot { .. } => {
                    self.send_append_resp(envelope.from, false, 0, 0, 0);
                }
                Message::PreVote { .. } => {
                    self.send(envelope.from, Message::PreVoteResp { granted: false });
                }
                _ => {}
            }
            return false;
        }
        true
    }

    fn become_follower(&mut self, term: u64, leader: Option<NodeId>) {
        assert!(term >= self.term);
        if term > self.term {
            self.term = term;
            self.voted_for = None;
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes.clear();
        self.progress.clear();
        self.reads_pending.clear();
        self.reads_waiting.clear();
        self.reset_election_timer();
    }

    /// An append or snapshot from the leader of the current term.
    fn follow(&mut self, from: NodeId) {
        // Two leaders in one term would break everything Raft promises.
        assert!(self.role != Role::Leader);
        if self.role != Role::Follower {
            self.become_follower(self.term, Some(from));
        }
        self.leader = Some(from);
        self.election_elapsed = 0;
    }

    fn start_pre_vote(&mut self) {
        self.campaign(Role::PreCandidate);
    }

    fn start_election(&mut self) {
        self.term += 1;
        self.voted_for = Some(self.id);
        self.campaign(Role::Candidate);
    }

    /// Becomes a (pre-)candidate, votes for itself and asks the other voters. A pre-vote
    /// asks about the next term without moving to it, so a node that cannot win (cut off,
    /// or behind) never raises the group's term (thesis section 9.6).
    fn campaign(&mut self, role: Role) {
        self.role = role;
        self.leader = None;
        self.votes.clear();
        self.reset_election_timer();
        self.votes.insert(self.id, true);
        if self.won() {
            match role {
                Role::PreCandidate => self.start_election(),
                _ => self.become_leader(),
            }
            return;
        }
        let (last_index, last_term) = (self.log.last_index(), self.log.last_term());
        let (term, message) = match role {
            Role::PreCandidate => (
                self.term + 1,
                Message::PreVote {
                    last_index,
                    last_term,
                },
            ),
            _ => (
                self.term,
                Message::Vote {
                    last_index,
                    last_term,
                },
            ),
        };
        for to in self.peers() {
            self.send_with_term(to, term, message.clone());
        }
    }

    fn count_votes(&self, granted: bool) -> usize {
        let config = self.log.config();
        self.votes
            .iter()
            .filter(|(id, g)| **g == granted && config.contains(id))
            .count()
    }

    fn won(&self) -> bool {
        self.count_votes(true) >= self.quorum()
    }

    fn lost(&self) -> bool {
        self.count_votes(false) >= self.quorum()
    }

    fn become_leader(&mut self) {
        assert!(self.role == Role::Candidate);
        assert!(self.voted_for == Some(self.id));
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.votes.clear();
        self.progress.clear();
        self.heartbeat_elapsed = 0;
        self.quorum_elapsed = 0;
        self.sync_progress();
        // A no-op of the new term: committing it commits everything before it (paper
        // section 5.4.2) and lets reads be served (section 8).
        self.append_and_send(EntryData::Noop);
    }

    fn peers(&self) -> Vec<NodeId> {
        let me = self.id;
        self.log
            .config()
            .iter()
            .copied()
            .filter(|id| *id != me)
            .collect()
    }

    fn send(&mut self, to: NodeId, message: Message) {
        self.send_with_term(to, self.term, message);
    }

    fn send_with_term(&mut self, to: NodeId, term: u64, message: Message) {
        self.outbox.push(Envelope {
            from: self.id,
            to,
            term,
            message,
        });
    }

    // ---- elections --------------------------------------------------------------------

    fn log_up_to_date(&self, last_index: u64, last_term: u64) -> bool {
        let (mine_index, mine_term) = (self.log.last_index(), self.log.last_term());
        last_term > mine_term || (last_term == mine_term && last_index >= mine_index)
    }

    fn on_pre_vote(&mut self, from: NodeId, term: u64, last_index: u64, last_term: u64) {
        let granted =
            term > self.term && !self.in_lease() && self.log_up_to_date(last_index, last_term);
        let reply_term = if granted { term } else { self.term };
        self.send_with_term(from, reply_term, Message::PreVoteResp { granted });
    }

    fn on_pre_vote_resp(&mut self, from: NodeId, term: u64, granted: bool) {
        if self.role != Role::PreCandidate {
            return;
        }
        if granted && term != self.term + 1 {
            return;
        }
        self.tally(from, granted);
    }

    /// Counts an answer to our (pre-)vote request; a majority either way decides.
    fn tally(&mut self, from: NodeId, granted: bool) {
        self.votes.insert(from, granted);
        if self.won() {
            match self.role {
                Role::PreCandidate => self.start_election(),
                _ => self.become_leader(),
            }
        } else if self.lost() {
            self.become_follower(self.term, None);
        }
    }

    fn on_vote(&mut self, from: NodeId, last_index: u64, last_term: u64) {
        let free = self.voted_for.is_none() && self.leader.is_none();
        let granted =
            (free || self.voted_for == Some(from)) && self.log_up_to_date(last_index, last_term);
        if granted {
            self.voted_for = Some(from);
            self.reset_election_timer();
        }
        self.send(from, Message::VoteResp { granted });
    }

    fn on_vote_resp(&mut self, from: NodeId, granted: bool) {
        if self.role == Role::Candidate {
            self.tally(from, granted);
        }
    }

    // ---- replication: follower side ---------------------------------------------------

    fn on_append(
        &mut self,
        from: NodeId,
        prev_index: u64,
        prev_term: u64,
        mut entries: Vec<Entry>,
        commit: u64,
        read_seq: u64,
    ) {
        let mut prev = (prev_index, prev_term);
        let snapshot_index = self.log.snapshot_index();
        if prev_index < snapshot_index {
            // Entries up to the snapshot are committed and so match the leader's; skip them.
            let skip = (snapshot_index - prev_index) as usize;
            if skip >= entries.len() {
                let matched = prev_index + entries.len() as u64;
                self.send_append_resp(from, true, matched, 0, read_seq);
                return;
            }
            entries.drain(..skip);
            prev = (snapshot_index, self.log.snapshot().meta.term);
        }
        if self.log.term_at(prev.0) != Some(prev.1) {
            let hint = self.conflict_hint(prev.0);
            self.send_append_resp(from, false, hint, prev.0, read_seq);
            return;
        }
        let last_new = prev.0 + entries.len() as u64;
        for entry in entries {
            self.append_from_leader(entry);
        }
        if commit > self.commit {
            self.commit = self.commit.max(commit.min(last_new));
        }
        assert!(self.commit <= self.log.last_index());
        self.send_append_resp(from, true, last_new, 0, read_seq);
    }

    fn append_from_leader(&mut self, entry: Entry) {
        match self.log.term_at(entry.index) {
            Some(term) if term == entry.term => {}
            Some(_) => {
                // Log matching: a conflict is never at or below the commit point.
                assert!(entry.index > self.commit);
                self.log.truncate_from(entry.index);
                self.log.push(entry);
            }
            None => self.log.push(entry),
        }
    }

    /// Where the leader should try next after a refused append at `prev_index`: past our
    /// end, or the first index of the conflicting term (paper section 5.3, the optimisation
    /// at its end).
    fn conflict_hint(&self, prev_index: u64) -> u64 {
        let last = self.log.last_index();
        if prev_index > last {
            return last + 1;
        }
        let term = self.log.term_at(prev_index);
        let mut index = prev_index;
        while index > self.log.snapshot_index() + 1 && self.log.term_at(index - 1) == term {
            index -= 1;
        }
        index.max(self.commit + 1)
    }

    fn on_snapshot(&mut self, from: NodeId, snapshot: super::types::Snapshot, read_seq: u64) {
        let index = snapshot.meta.index;
        if index <= self.commit {
            // Our log up to the commit point matches the leader's already.
            let commit = self.commit;
            self.send_append_resp(from, true, commit, 0, read_seq);
            return;
        }
        self.log.install(snapshot);
        self.commit = index;
        self.send_append_resp(from, true, index, 0, read_seq);
    }

    fn send_append_resp(
        &mut self,
        to: NodeId,
        success: bool,
        index: u64,
        rejected: u64,
        read_seq: u64,
    ) {
        self.send(
            to,
            Message::AppendResp {
                success,
                index,
                rejected,
                read_seq,
            },
        );
    }

    // ---- replication: leader side -----------------------------------------------------

    fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.quorum_elapsed += 1;
        if self.quorum_elapsed >= self.opts.election_ticks {
            self.quorum_elapsed = 0;
            if !self.quorum_active() {
                // Check-quorum: a leader cut off from its majority stops acting as one
                // within an election timeout, so it acknowledges nothing more.
                self.become_follower(self.term, None);
                return;
            }
        }
        if self.heartbeat_elapsed >= self.opts.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.broadcast_append();
        }
    }

    fn quorum_active(&mut self) -> bool {
        let me = self.id;
        let mut active = 0;
        for voter in self.log.config() {
            let heard = *voter == me || self.progress.get(voter).is_some_and(|p| p.active);
            active += usize::from(heard);
        }
        for p in self.progress.values_mut() {
            p.active = false;
        }
        active >= self.quorum()
    }

    /// Keeps one progress per voter other than ourselves, after a configuration change.
    fn sync_progress(&mut self) {
        let peers = self.peers();
        let next = self.log.last_index() + 1;
        self.progress.retain(|id, _| peers.contains(id));
        for id in peers {
            self.progress.entry(id).or_insert(Progress {
                next,
                matched: 0,
                active: false,
                read_seq: 0,
            });
        }
    }

    fn append_and_send(&mut self, data: EntryData) -> Proposed {
        assert!(self.role == Role::Leader);
        let proposed = Proposed {
            index: self.log.last_index() + 1,
            term: self.term,
        };
        let is_config = matches!(data, EntryData::Config(_));
        self.log.push(Entry {
            index: proposed.index,
            term: proposed.term,
            data,
        });
        if is_config {
            self.sync_progress();
        }
        self.broadcast_append();
        proposed
    }

    fn broadcast_append(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for to in peers {
            self.send_append(to);
        }
    }

    fn send_append(&mut self, to: NodeId) {
        let Some(p) = self.progress.get(&to) else {
            return;
        };
        let prev = p.next - 1;
        let message = match self.log.term_at(prev) {
            None => {
                // The entries it needs are compacted away: send the snapshot.
                let next = self.log.snapshot_index() + 1;
                self.set_next(to, next);
                Message::InstallSnapshot {
                    snapshot: self.log.snapshot().clone(),
                    read_seq: self.read_seq,
                }
            }
            Some(prev_term) => {
                let last = self
                    .log
                    .last_index()
                    .min(prev + self.opts.entries_per_message_max);
                self.set_next(to, last + 1);
                Message::Append {
                    prev_index: prev,
                    prev_term,
                    entries: self.log.slice(prev + 1, last),
                    commit: self.commit,
                    read_seq: self.read_seq,
                }
            }
        };
        self.send(to, message);
    }

    fn set_next(&mut self, to: NodeId, next: u64) {
        if let Some(p) = self.progress.get_mut(&to) {
            p.next = next;
        }
    }

    fn on_append_resp(
        &mut self,
        from: NodeId,
        success: bool,
        index: u64,
        rejected: u64,
        read_seq: u64,
    ) {
        if self.role != Role::Leader {
            return;
        }
        let last = self.log.last_index();
        let Some(p) = self.progress.get_mut(&from) else {
            return;
        };
        p.active = true;
        p.read_seq = p.read_seq.max(read_seq);
        if success {
            assert!(index <= last);
            p.matched = p.matched.max(index);
            p.next = p.next.max(index + 1);
            let behind = p.next <= last;
            self.maybe_commit();
            if behind && self.role == Role::Leader {
                self.send_append(from);
            }
        } else if rejected >= p.matched {
            p.next = index.min(rejected).max(p.matched + 1);
            self.send_append(from);
        }
        self.release_reads();
    }

    /// The highest index a majority of voters holds durably; committed if it is of our
    /// term (paper section 5.4.2: never count replicas of an older term's entries).
    fn maybe_commit(&mut self) {
        let Some(index) = self.quorum_value(self.log.stable(), |p| p.matched) else {
            return;
        };
        if index <= self.commit || self.log.term_at(index) != Some(self.term) {
            return;
        }
        self.commit = index;
        self.on_commit_advanced();
    }

    /// The highest value a majority of voters has reached, given ours (`mine`, counted
    /// only if we are a voter) and a follower's (`theirs`); None without voters.
    fn quorum_value(&self, mine: u64, theirs: impl Fn(&Progress) -> u64) -> Option<u64> {
        let mut values: Vec<u64> = self
            .log
            .config()
            .iter()
            .map(|voter| match self.progress.get(voter) {
                _ if *voter == self.id => mine,
                Some(p) => theirs(p),
                None => 0,
            })
            .collect();
        values.sort_unstable_by(|a, b| b.cmp(a));
        values.get(self.quorum() - 1).copied()
    }

    fn on_commit_advanced(&mut self) {
        // Followers learn the new commit point now rather than at the next heartbeat.
        self.broadcast_append();
        if self.committed_in_term() {
            for (ctx, from) in std::mem::take(&mut self.reads_waiting) {
                self.leader_read(ctx, from);
            }
        }
        if !self.is_voter() && self.log.config_index() <= self.commit {
            // A leader that removed itself steps down once the removal is committed
            // (thesis section 4.2.2).
            self.become_follower(self.term, None);
        }
    }

    // ---- reads ------------------------------------------------------------------------

    fn on_read_index(&mut self, from: NodeId, ctx: u64) {
        if self.role == Role::Leader {
            self.leader_read(ctx, from);
        }
    }

    /// Read index (thesis section 6.4): note the commit point, then confirm with a round
    /// of heartbeats that we were still the leader after the read arrived.
    fn leader_read(&mut self, ctx: u64, from: NodeId) {
        if !self.committed_in_term() {
            self.reads_waiting.push((ctx, from));
            return;
        }
        self.read_seq += 1;
        self.reads_pending.push_back(PendingRead {
            seq: self.read_seq,
            index: self.commit,
            ctx,
            from,
        });
        self.broadcast_append();
        self.release_reads();
    }

    fn release_reads(&mut self) {
        let me = self.id;
        let Some(confirmed) = self.quorum_value(u64::MAX, |p| p.read_seq) else {
            return;
        };
        while self
            .reads_pending
            .front()
            .is_some_and(|r| r.seq <= confirmed)
        {
            let Some(read) = self.reads_pending.pop_front() else {
                break;
            };
            if read.from == me {
                self.reads_ready.push(ReadState {
                    ctx: read.ctx,
                    index: read.index,
                });
            } else {
                let (ctx, index) = (read.ctx, read.index);
                self.send(read.from, Message::ReadIndexResp { ctx, index });
            }
        }
    }
}
