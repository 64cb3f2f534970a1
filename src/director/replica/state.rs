//! The replica's own files in the director's data dir, besides the journal (FORMAT.md):
//! `director-id`, this director's raft id, made on first start; and `raft-state.json`,
//! the durable term and vote, the last commit point stored, and the voter set the group
//! was started with.

use crate::director::meta::journal::JournalError;
use crate::fsutil::write_atomic;
use crate::raft::NodeId;
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::Path;

pub const DIRECTOR_ID_FILE: &str = "director-id";
pub const RAFT_STATE_FILE: &str = "raft-state.json";
/// The only layout of `raft-state.json` this code reads and writes.
pub const RAFT_STATE_FORMAT: u64 = 1;
/// Ids stay below 2^53 so that `jq` and JavaScript read them exactly.
const ID_MASK: u64 = (1 << 53) - 1;

/// `raft-state.json`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RaftState {
    pub format: u64,
    pub term: u64,
    pub voted_for: Option<NodeId>,
    /// A commit point known when the file was written; it may lag the real one (raft
    /// learns the rest from the leader), never lead it.
    pub commit: u64,
    /// The voters the group started with (the journal's snapshots and `directors`
    /// records say how it changed since).
    pub voters: Vec<NodeId>,
}

/// Eight random bytes from the kernel (the seed of election timeouts, new ids).
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    let got = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut buf));
    if got.is_err() {
        // No /dev/urandom (a chroot): the clock and the process id differ per start.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        return nanos ^ (u64::from(std::process::id()) << 32);
    }
    u64::from_le_bytes(buf)
}

/// This director's id: read from `DIR/director-id`, or made and stored on first start.
pub fn director_id(dir: &Path) -> Result<NodeId, String> {
    let path = dir.join(DIRECTOR_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text
            .trim()
            .parse::<NodeId>()
            .ok()
            .filter(|id| *id != 0 && *id <= ID_MASK)
            .ok_or_else(|| {
                format!(
                    "{}: not a director id (a decimal number from 1 to 2^53-1)",
                    path.display()
                )
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = (random_u64() & ID_MASK).max(1);
            write_atomic(&path, format!("{id}\n").as_bytes())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(id)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// The stored state, or None on a director that never ran as a replica.
pub fn load(dir: &Path) -> Result<Option<RaftState>, String> {
    let path = dir.join(RAFT_STATE_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let st: RaftState = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{}: {e}. Hint: it holds this director's vote; restore it from a backup, \
             or wipe this director's data folder so it rejoins as a new follower",
            path.display()
        )
    })?;
    if st.format != RAFT_STATE_FORMAT {
        return Err(format!(
            "{}: format {} is unknown; this dpyfs reads format {RAFT_STATE_FORMAT}",
            path.display(),
            st.format
        ));
    }
    Ok(Some(st))
}

/// Stores the state atomically and durably (before any message that depends on it).
/// Its errors are the journal's, so a full disk answers 507 without naming the file.
pub fn store(dir: &Path, st: &RaftState) -> Result<(), JournalError> {
    let path = dir.join(RAFT_STATE_FILE);
    let mut bytes = serde_json::to_vec(st)?;
    bytes.push(b'\n');
    write_atomic(&path, &bytes).map_err(|source| JournalError::Io { path, source })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn id_is_made_once_and_state_round_trips() {
        let d = std::env::temp_dir().join(crate::fsutil::unique_tmp_name("dpyfs-raft-state"));
        std::fs::create_dir_all(&d).unwrap();
        let id = director_id(&d).unwrap();
        assert!(id > 0 && id <= ID_MASK);
        assert_eq!(director_id(&d).unwrap(), id);
        assert_eq!(load(&d).unwrap(), None);
        let st = RaftState {
            format: RAFT_STATE_FORMAT,
            term: 3,
            voted_for: Some(id),
            commit: 9,
            voters: vec![id, 7],
        };
        store(&d, &st).unwrap();
        assert_eq!(load(&d).unwrap(), Some(st));
        std::fs::write(d.join(DIRECTOR_ID_FILE), "0\n").unwrap();
        assert!(director_id(&d).unwrap_err().contains("not a director id"));
        std::fs::write(d.join(RAFT_STATE_FILE), "{\"format\":2}").unwrap();
        assert!(load(&d).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
