//! A node's log as it holds it in memory: the newest snapshot, the entries after it, how
//! far they are durable, and what changed since the caller last persisted.

use super::types::{Entry, EntryData, NodeId, Snapshot, SnapshotMeta};

pub(crate) struct Log {
    snapshot: Snapshot,
    /// `entries[k].index == snapshot.meta.index + 1 + k`.
    entries: Vec<Entry>,
    /// The last index the caller has reported durable (or the snapshot covers).
    stable: u64,
    /// The lowest index dropped from the stored log since the last `Ready`.
    truncated_from: Option<u64>,
    /// A received snapshot the caller has not yet been handed.
    snapshot_unsent: bool,
    /// The configuration entries among `entries`, oldest first.
    configs: Vec<(u64, Vec<NodeId>)>,
}

/// What the caller must persist (see the durability contract in `mod.rs`).
pub(crate) struct Unstable {
    pub truncate_from: Option<u64>,
    pub snapshot: Option<Snapshot>,
    pub entries: Vec<Entry>,
}

impl Log {
    /// A log read back from storage: all of it is durable.
    pub fn restored(snapshot: Snapshot, entries: Vec<Entry>) -> Log {
        let stable = snapshot.meta.index;
        let mut log = Log {
            snapshot,
            entries: Vec::new(),
            stable,
            truncated_from: None,
            snapshot_unsent: false,
            configs: Vec::new(),
        };
        for entry in entries {
            log.push(entry);
        }
        log.stable = log.last_index();
        log
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub fn snapshot_index(&self) -> u64 {
        self.snapshot.meta.index
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn last_index(&self) -> u64 {
        self.snapshot.meta.index + self.entries.len() as u64
    }

    pub fn last_term(&self) -> u64 {
        self.entries
            .last()
            .map_or(self.snapshot.meta.term, |entry| entry.term)
    }

    pub fn stable(&self) -> u64 {
        self.stable
    }

    /// The term of the entry at `index`; None when it is compacted away or not there yet.
    pub fn term_at(&self, index: u64) -> Option<u64> {
        if index == self.snapshot.meta.index {
            return Some(self.snapshot.meta.term);
        }
        self.get(index).map(|entry| entry.term)
    }

    fn get(&self, index: u64) -> Option<&Entry> {
        let first = self.snapshot.meta.index + 1;
        if index < first {
            return None;
        }
        usize::try_from(index - first)
            .ok()
            .and_then(|k| self.entries.get(k))
    }

    /// Entries `from..=to`, both present.
    pub fn slice(&self, from: u64, to: u64) -> Vec<Entry> {
        let first = self.snapshot.meta.index + 1;
        assert!(from >= first);
        assert!(to <= self.last_index());
        if from > to {
            return Vec::new();
        }
        let lo = (from - first) as usize;
        let hi = (to - first) as usize;
        self.entries[lo..=hi].to_vec()
    }

    /// The voters in force at the end of the log: a configuration is effective as soon as
    /// it is appended, committed or not (thesis section 4.1).
    pub fn config(&self) -> &[NodeId] {
        self.configs
            .last()
            .map_or(&self.snapshot.meta.config, |(_, voters)| voters)
    }

    /// The index of the newest configuration entry in the log (the snapshot's index if
    /// none is left).
    pub fn config_index(&self) -> u64 {
        self.configs
            .last()
            .map_or(self.snapshot.meta.index, |(index, _)| *index)
    }

    /// The voters in force at `index` (at or after the snapshot).
    pub fn config_at(&self, index: u64) -> Vec<NodeId> {
        self.configs
            .iter()
            .rev()
            .find(|(at, _)| *at <= index)
            .map_or_else(|| self.snapshot.meta.config.clone(), |(_, v)| v.clone())
    }

    pub fn push(&mut self, entry: Entry) {
        assert!(entry.index == self.last_index() + 1);
        assert!(entry.term >= self.last_term());
        if let EntryData::Config(voters) = &entry.data {
            self.configs.push((entry.index, voters.clone()));
        }
        self.entries.push(entry);
    }

    /// Drops `index` and everything after it (a follower's uncommitted, conflicting tail).
    pub fn truncate_from(&mut self, index: u64) {
        assert!(index > self.snapshot.meta.index);
        assert!(index <= self.last_index());
        self.entries
            .truncate((index - self.snapshot.meta.index - 1) as usize);
        self.configs.retain(|(at, _)| *at < index);
        if index <= self.stable {
            self.stable = index - 1;
            self.truncated_from = Some(self.truncated_from.map_or(index, |t| t.min(index)));
        }
    }

    /// Takes a snapshot received from the leader. Entries after it are kept only if the log
    /// holds the snapshot's last entry itself (thesis section 5.1); otherwise the whole log
    /// is replaced.
    pub fn install(&mut self, snapshot: Snapshot) {
        let index = snapshot.meta.index;
        assert!(index > self.snapshot.meta.index);
        if self.term_at(index) == Some(snapshot.meta.term) {
            self.entries
                .drain(..(index - self.snapshot.meta.index) as usize);
            self.stable = self.stable.max(index);
        } else {
            if self.last_index() > index {
                self.truncate_from(index + 1);
            }
            self.entries.clear();
            self.stable = index;
        }
        self.configs.retain(|(at, _)| *at > index);
        self.snapshot = snapshot;
        self.snapshot_unsent = true;
    }

    /// Drops the entries up to `index`, which the caller's own snapshot `data` covers.
    pub fn compact(&mut self, index: u64, data: Vec<u8>) -> SnapshotMeta {
        assert!(index > self.snapshot.meta.index);
        assert!(index <= self.stable);
        let meta = SnapshotMeta {
            index,
            term: self.term_at(index).unwrap_or(0),
            config: self.config_at(index),
        };
        assert!(meta.term > 0);
        self.entries
            .drain(..(index - self.snapshot.meta.index) as usize);
        self.configs.retain(|(at, _)| *at > index);
        self.snapshot = Snapshot {
            meta: meta.clone(),
            data,
        };
        meta
    }

    pub fn has_unstable(&self) -> bool {
        self.snapshot_unsent || self.truncated_from.is_some() || self.stable < self.last_index()
    }

    pub fn take_unstable(&mut self) -> Unstable {
        let snapshot = self.snapshot_unsent.then(|| self.snapshot.clone());
        self.snapshot_unsent = false;
        let from = self.stable.max(self.snapshot.meta.index) + 1;
        Unstable {
            truncate_from: self.truncated_from.take(),
            snapshot,
            entries: self.slice(from, self.last_index()),
        }
    }

    /// The caller has made everything up to `index` durable.
    pub fn stable_to(&mut self, index: u64) {
        assert!(index <= self.last_index());
        self.stable = self.stable.max(index);
    }
}
