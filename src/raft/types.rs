//! The values a `Node` takes and gives: entries, messages, its persistent state, what it
//! asks the caller to do (`Ready`), and its status. Kept apart from `mod.rs` so that the
//! node and its log depend on them, and not on the module that declares them.

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
