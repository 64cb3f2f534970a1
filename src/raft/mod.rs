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
mod types;

pub use node::Node;
pub use rng::Rng;
pub use types::*;
