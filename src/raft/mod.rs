//! Raft consensus as a pure state machine (Ongaro & Ousterhout, "In Search of an
//! Understandable Consensus Algorithm", and Ongaro's thesis): terms, durable votes, log
//! matching, commit by a majority of entries of the current term, check-quorum, pre-vote,
//! read index, single-server membership changes and snapshots.
//!
//! This module knows nothing of HTTP, files, the journal's framing or buckets. It does no
//! I/O, reads no clock, starts no thread and has no randomness of its own: the caller
//! delivers messages (`Node::step`), advances time (`Node::tick`) and seeds the election
//! timeouts (`Options::seed`). Everything the node wants done comes back as a `Ready`.
//!
//! # The durability contract
//!
//! The caller drives a node in this loop, with no other call on the node in between:
//!
//! 1. `let rd = node.ready();`
//! 2. persist, in this order, each step atomic: `rd.hard_state`; drop stored entries with
//!    index >= `rd.truncate_from`; `rd.snapshot` (store it, drop stored entries with index
//!    <= its index); append `rd.entries` (each entry's index is one more than the stored
//!    log's last); `rd.commit`, last. Then make it durable (fsync).
//! 3. only then send `rd.messages`: a vote grant or an append acknowledgement in them
//!    promises that what they depend on survives a crash;
//! 4. install `rd.snapshot`'s data into the state machine, then apply `rd.committed` in
//!    order; serve each of `rd.reads` once the state machine has applied up to its index;
//! 5. `node.advance()`.
//!
//! A crash anywhere in step 2 may keep any prefix of those writes (the simulation in
//! `sim.rs` does exactly that); nothing was sent, so nothing depends on them. The leader
//! counts its own log towards a majority only after `advance`, so an entry is committed
//! only when a majority has it durable, and a client's proposal is acknowledged only when
//! the entry at its `Proposed::index` is applied with its `Proposed::term`.

mod log;
mod node;
mod rng;
#[cfg(test)]
mod sim;

pub use node::Node;
pub use rng::Rng;

/// A director's id within the group; 0 is never a node.
pub type NodeId = u64;

/// What an entry carries. `Noop` is the entry a new leader appends to commit its term;
/// `Config` is the full voter set after a one-server change, effective once appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryData {
    Noop,
    Command(Vec<u8>),
    Config(Vec<NodeId>),
}

/// One log entry. `index` is the journal's `seq` once integrated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub index: u64,
    pub term: u64,
    pub data: EntryData,
}

/// What must survive a crash besides the log: the current term and the vote cast in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HardState {
    pub term: u64,
    pub voted_for: Option<NodeId>,
}

/// What a snapshot covers: every entry up to `index` (whose term is `term`), and the voter
/// set in force at `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub index: u64,
    pub term: u64,
    pub config: Vec<NodeId>,
}

/// A snapshot: `data` is the caller's state machine after `meta.index`, opaque here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

impl Snapshot {
    /// The snapshot a brand-new group starts from: nothing applied, `voters` in force. A
    /// node that is to join an existing group starts from `bootstrap(vec![], ..)` and waits
    /// to be added.
    pub fn bootstrap(voters: Vec<NodeId>, data: Vec<u8>) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                index: 0,
                term: 0,
                config: voters,
            },
            data,
        }
    }
}

/// Timing and limits. Ticks are the caller's unit (the director will tick every few tens
/// of milliseconds).
#[derive(Clone, Debug)]
pub struct Options {
    /// A follower starts an election after a random timeout in [election, 2 x election)
    /// ticks without a leader; a leader steps down after `election_ticks` without hearing
    /// from a majority.
    pub election_ticks: u64,
    /// A leader sends appends (empty ones as heartbeats) this often.
    pub heartbeat_ticks: u64,
    /// At most this many entries in one append message.
    pub entries_per_message_max: u64,
    /// Seeds the randomized election timeouts (different per node and per start).
    pub seed: u64,
}

/// What the caller read back from its storage at start.
#[derive(Clone, Debug)]
pub struct Restored {
    pub hard_state: HardState,
    /// The last `Ready::commit` stored (0 if none): how far the stored log is known to be
    /// committed, so that the state machine can be rebuilt up to it at start.
    pub commit: u64,
    pub snapshot: Snapshot,
    /// The stored entries after the snapshot, in order.
    pub entries: Vec<Entry>,
    /// How far the caller's state machine has applied (at least the snapshot's index).
    pub applied: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
}

/// A message between nodes. `term` is the sender's term, except in pre-votes, which carry
/// the term the sender would campaign in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    pub from: NodeId,
    pub to: NodeId,
    pub term: u64,
    pub message: Message,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    PreVote {
        last_index: u64,
        last_term: u64,
    },
    PreVoteResp {
        granted: bool,
    },
    Vote {
        last_index: u64,
        last_term: u64,
    },
    VoteResp {
        granted: bool,
    },
    /// Entries after `prev_index`; `read_seq` is echoed back to confirm leadership for
    /// read-index reads.
    Append {
        prev_index: u64,
        prev_term: u64,
        entries: Vec<Entry>,
        commit: u64,
        read_seq: u64,
    },
    /// On success `index` is the last index known to match the leader's log; on failure
    /// it is where the leader should try next, and `rejected` the `prev_index` refused.
    AppendResp {
        success: bool,
        index: u64,
        rejected: u64,
        read_seq: u64,
    },
    InstallSnapshot {
        snapshot: Snapshot,
        read_seq: u64,
    },
    /// A follower asks the leader for a read index on behalf of its client `ctx`.
    ReadIndex {
        ctx: u64,
    },
    ReadIndexResp {
        ctx: u64,
        index: u64,
    },
}

/// A linearizable read may be served once the state machine has applied `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    pub ctx: u64,
    pub index: u64,
}

/// Work for the caller; see the durability contract in the module documentation.
#[derive(Debug, Default)]
pub struct Ready {
    pub hard_state: Option<HardState>,
    pub truncate_from: Option<u64>,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
    /// The commit point, to store last: it may name entries of this same `Ready`, and a
    /// commit point stored before them would, after a crash, let the node apply a stale
    /// entry of its own at that index (the simulation found this, seed 8621).
    pub commit: Option<u64>,
    pub messages: Vec<Envelope>,
    pub committed: Vec<Entry>,
    pub reads: Vec<ReadState>,
}

/// Where a proposal landed. It is acknowledged when the entry applied at `index` has this
/// `term`; any other entry there means it was lost with its leader and may be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposed {
    pub index: u64,
    pub term: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigChange {
    Add(NodeId),
    Remove(NodeId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProposeError {
    /// Ask the leader instead (if one is known).
    NotLeader { leader: Option<NodeId> },
    /// A configuration change is not committed yet, or the leader has not yet committed
    /// an entry of its own term (the thesis's fix for one-at-a-time changes): retry later.
    ChangeInProgress,
    /// Adding a voter that is one, or removing one that is not.
    Unchanged,
}

/// For `/_dpyfs/status`: who leads, and how far behind each voter is (leader only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit: u64,
    pub applied: u64,
    pub last_index: u64,
    pub config: Vec<NodeId>,
    /// (voter, highest index known to match), the leader's view; empty elsewhere.
    pub matched: Vec<(NodeId, u64)>,
}
