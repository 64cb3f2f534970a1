//! Start-up of a replica from what `Journal::open` replayed, and the one way a committed
//! entry is applied to the index (at start and in the raft thread alike).

use super::state::{self, RAFT_STATE_FORMAT, RaftState};
use super::wire::record_to_entry;
use crate::director::error::{DirectorError, Result};
use crate::director::meta::condition::WriteCondition;
use crate::director::meta::index::{Index, Prepared};
use crate::director::meta::journal::Replay;
use crate::director::meta::records::Record;
use crate::raft::{Entry, EntryData, HardState, NodeId, Restored, Snapshot, SnapshotMeta};
use std::path::Path;

/// What the raft thread starts from; `voters` empty until the group's ids are known (a
/// new group whose peers have not answered yet).
pub struct Boot {
    pub restored: Restored,
    pub voters_known: bool,
    /// Started with nothing (no journal, no `raft-state.json`): if its peers hold records,
    /// this is a wiped director coming back, which must not vote before it has caught up
    /// (it forgot its vote and its copies).
    pub blank: bool,
}

/// Applies one committed entry. A command that no longer validates (two directors raced
/// to create the same bucket, say) is skipped on every director alike, since all apply
/// the same entries in the same order; its proposer gets the error. Raft's own entries
/// change nothing in the index.
pub fn apply_entry(idx: &mut Index, e: &Entry) -> Result<Option<Record>> {
    let EntryData::Command(bytes) = &e.data else {
        return Ok(None);
    };
    let mut map = match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.insert("seq".into(), e.index.into());
            m
        }
        _ => {
            return Err(DirectorError::Internal(format!(
                "entry {} is not a record",
                e.index
            )));
        }
    };
    let condition = WriteCondition::take_from(&mut map).map_err(DirectorError::Internal)?;
    let (_, rec) = Record::from_map(map).map_err(DirectorError::Internal)?;
    {
        let p = Prepared::new(&rec)
            .map_err(DirectorError::Internal)?
            .with_condition(condition);
        idx.validate(&p)?;
        idx.apply(&p).map_err(DirectorError::Internal)?;
    }
    Ok(Some(rec))
}

fn internal(e: String) -> DirectorError {
    DirectorError::Internal(e)
}

/// The voters at the end of the restored log.
fn last_voters(snapshot: &SnapshotMeta, entries: &[Entry]) -> Vec<NodeId> {
    entries
        .iter()
        .rev()
        .find_map(|e| match &e.data {
            EntryData::Config(v) => Some(v.clone()),
            _ => None,
        })
        .unwrap_or_else(|| snapshot.config.clone())
}

/// Rebuilds the index up to the commit point and prepares the raft node's start. A
/// director that never ran as a replica becomes a group of one when it has a journal or
/// no peers (no migration: its records read as term 0); a new one with peers learns its
/// group's voters from them first (`voters_known` false).
pub fn restore(
    dir: &Path,
    id: NodeId,
    have_peers: bool,
    replay: Replay,
    index: &mut Index,
) -> Result<Boot> {
    let stored = state::load(dir).map_err(internal)?;
    let entries: Vec<Entry> = replay
        .records
        .into_iter()
        .map(record_to_entry)
        .collect::<std::result::Result<_, _>>()
        .map_err(internal)?;
    let last = entries.last().map_or(replay.snapshot_seq, |e| e.index);
    let stored = match stored {
        Some(s) => s,
        None if last > 0 || !have_peers => {
            let s = RaftState {
                format: RAFT_STATE_FORMAT,
                term: entries.last().map_or(replay.snapshot_term, |e| e.term),
                voted_for: None,
                commit: last,
                voters: vec![id],
            };
            state::store(dir, &s).map_err(|e| internal(e.to_string()))?;
            s
        }
        None => RaftState::default(),
    };
    let meta = SnapshotMeta {
        index: replay.snapshot_seq,
        term: replay.snapshot_term,
        config: replay
            .snapshot_voters
            .unwrap_or_else(|| stored.voters.clone()),
    };
    let voters = last_voters(&meta, &entries);
    // In a group of one every durable entry is committed: the majority is itself.
    let commit = if voters == [id] {
        last
    } else {
        stored.commit.min(last)
    };
    let mut applied = replay.snapshot_seq;
    for e in entries.iter().take_while(|e| e.index <= commit) {
        if let Err(err) = apply_entry(index, e) {
            log::debug!(
                "journal record {} was refused when it committed: {err}",
                e.index
            );
        }
        applied = e.index;
    }
    let data = match &replay.snapshot {
        Some(v) => serde_json::to_vec(v).map_err(|e| internal(e.to_string()))?,
        None => b"null".to_vec(),
    };
    Ok(Boot {
        blank: last == 0 && stored.format == 0,
        voters_known: !voters.is_empty(),
        restored: Restored {
            hard_state: HardState {
                term: stored
                    .term
                    .max(entries.last().map_or(meta.term, |e| e.term)),
                voted_for: stored.voted_for,
            },
            commit,
            snapshot: Snapshot { meta, data },
            entries,
            applied,
        },
    })
}
