//! Redundant directors: the journal replicated by Raft (`src/raft`) among a group of 1, 3
//! or 5 directors. `shared` is what the other rooms see (inbox, applied point, status);
//! `driver` is the raft thread; `commit` the director's commit and read paths through
//! it; `boot` the start from the journal; `state` the term, vote and id files; `wire` and
//! `transport` the messages between directors and their HTTP; `routes` their endpoints; `members` the changes of voters.

pub mod boot;
pub mod commit;
pub mod driver;
pub mod members;
pub mod routes;
pub mod shared;
pub mod state;
pub mod transport;
pub mod wire;
