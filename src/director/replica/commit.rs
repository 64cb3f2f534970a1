//! The director's commit path through the replica: a record is validated here, proposed
//! by the leader (or forwarded to it by a follower), and acknowledged only once it is
//! applied with the term it was proposed in, which means a majority has it fsynced.
//! Reads on a group of more than one wait for a read index first (linearizable).

use super::shared::{COMMIT_WAIT_MS, LEADER_WAIT_MS, READ_WAIT_MS, Replica, unavailable};
use crate::director::Director;
use crate::director::error::{DirectorError, Result};
use crate::director::meta::index::{Index, Prepared};
use crate::director::meta::records::Record;
use serde_json::{Map, Value};
use std::time::Duration;

/// The S3 codes a forwarded error may carry, so that a follower answers with the
/// leader's code (the error type holds `&'static str` codes).
const FORWARDED_CODES: &[&str] = &[
    "NoSuchBucket",
    "NoSuchKey",
    "NoSuchUpload",
    "BucketAlreadyOwnedByYou",
    "BucketNotEmpty",
    "InvalidArgument",
    "InvalidPart",
    "InvalidPartOrder",
    "EntityTooSmall",
    "PreconditionFailed",
    "StoreExists",
    "NoSuchStore",
    "ServiceUnavailable",
    "InsufficientStorage",
    "DirectorChangeInProgress",
    "DirectorExists",
    "NoSuchDirector",
    "DirectorQuorumAtRisk",
    "DirectorUnreachable",
];

pub(super) fn forwarded_error(status: u16, code: &str, msg: String) -> DirectorError {
    let fallback = if status >= 500 {
        "InternalError"
    } else {
        "InvalidRequest"
    };
    let code = FORWARDED_CODES
        .iter()
        .find(|c| **c == code)
        .copied()
        .unwrap_or(fallback);
    DirectorError::S3(status, code, msg)
}

/// The id of the store a `store_add` record (journal form) adds.
pub fn store_added(m: &Map<String, Value>) -> Option<String> {
    if m.get("type").and_then(Value::as_str) != Some("store_add") {
        return None;
    }
    m.get("id").and_then(Value::as_str).map(str::to_string)
}

impl Director {
    /// Validates, journals and applies one record; returns once it is durable on a
    /// majority of directors (on this one alone in a group of one).
    pub fn commit(&self, rec: &Record) -> Result<u64> {
        self.commit_checked(rec, |_| Ok(()))
    }

    /// `commit`, after `check` has passed on the index. The check runs against this
    /// director's index before proposing; the leader validates the record again when it
    /// applies, in log order, so a record never applies to an index it does not fit.
    pub fn commit_checked(
        &self,
        rec: &Record,
        check: impl FnOnce(&Index) -> Result<()>,
    ) -> Result<u64> {
        let p = Prepared::new(rec).map_err(DirectorError::Internal)?;
        self.commit_prepared(&p, check)
    }

    /// `commit_checked` of a record whose in-memory forms its caller made (and keeps, to
    /// answer with: a PUT answers with the object it made). The index holds its own copy,
    /// made when the committed entry is applied, on every director alike.
    pub fn commit_prepared(
        &self,
        p: &Prepared<'_>,
        check: impl FnOnce(&Index) -> Result<()>,
    ) -> Result<u64> {
        {
            let idx = self.read_index();
            check(&idx)?;
            idx.validate(p)?;
        }
        let mut map = p.record.to_map()?;
        p.condition.insert_into(&mut map)?;
        self.replicate_records(vec![map])
            .pop()
            .unwrap_or_else(|| Err(DirectorError::Internal("no result for a record".into())))
    }

    /// Commits several records, each on its own (one failing does not stop the others):
    /// DeleteObjects.
    pub fn commit_many(&self, recs: &[Record]) -> Vec<Result<u64>> {
        let mut out: Vec<Option<Result<u64>>> = Vec::with_capacity(recs.len());
        let mut maps = Vec::new();
        {
            let idx = self.read_index();
            for r in recs {
                let checked = Prepared::new(r)
                    .map_err(DirectorError::Internal)
                    .and_then(|p| idx.validate(&p))
                    .and_then(|_| r.to_map());
                match checked {
                    Ok(m) => {
                        maps.push(m);
                        out.push(None);
                    }
                    Err(e) => out.push(Some(Err(e))),
                }
            }
        }
        let mut done = self.replicate_records(maps).into_iter();
        out.into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    done.next()
                        .unwrap_or_else(|| Err(DirectorError::Internal("lost result".into())))
                })
            })
            .collect()
    }

    /// Proposes records on the leader (this director, or the one it forwards to) and
    /// waits until each is applied here.
    fn replicate_records(&self, maps: Vec<Map<String, Value>>) -> Vec<Result<u64>> {
        if maps.is_empty() {
            return Vec::new();
        }
        let r = &self.replica;
        let leader_url = match r.wait_leader(Duration::from_millis(LEADER_WAIT_MS)) {
            Some(id) if id == r.id => return self.propose_local(maps),
            Some(id) => r.peers.url_of(id),
            None => None,
        };
        let Some(url) = leader_url else {
            let n = maps.len();
            return (0..n)
                .map(|_| Err(unavailable("no leader among the directors right now")))
                .collect();
        };
        let results = match r.peers.forward(&url, &maps) {
            Ok(results) => results,
            Err(e) => {
                // The record may have reached the leader and may still commit: say so
                // rather than "nothing was stored".
                let why = format!(
                    "the leading director at {url} did not answer ({e}); the change may or \
                     may not take effect: read it back before retrying a conditional write"
                );
                let unknown = || DirectorError::S3(503, "ServiceUnavailable", why.clone());
                return maps.iter().map(|_| Err(unknown())).collect();
            }
        };
        results
            .into_iter()
            .map(|res| match res {
                Ok(seq) => {
                    r.wait_applied(seq, Duration::from_millis(COMMIT_WAIT_MS))?;
                    Ok(seq)
                }
                Err((status, code, msg)) => Err(forwarded_error(status, &code, msg)),
            })
            .collect()
    }

    /// The leader's side: every record proposed at once, then every answer awaited.
    pub fn propose_local(&self, maps: Vec<Map<String, Value>>) -> Vec<Result<u64>> {
        let wait = Duration::from_millis(COMMIT_WAIT_MS);
        let receivers: Vec<_> = maps
            .iter()
            .map(|m| {
                serde_json::to_vec(m)
                    .map(|bytes| self.replica.propose(bytes, store_added(m)))
                    .map_err(|e| DirectorError::Internal(e.to_string()))
            })
            .collect();
        receivers
            .into_iter()
            .map(|rx| rx.and_then(|rx| Replica::wait_reply(&rx, wait)))
            .collect()
    }

    /// Before a read on a group of more than one: waits until this director has applied
    /// everything committed when the read began (read index from the leader).
    pub fn read_barrier(&self) -> Result<()> {
        let r = &self.replica;
        if r.is_single() {
            return Ok(());
        }
        if !r.view().running {
            return Err(unavailable("this director is still joining its group"));
        }
        let wait = Duration::from_millis(READ_WAIT_MS);
        let index = Replica::wait_reply(&r.read_index(), wait)?;
        r.wait_applied(index, wait)
    }

    /// Whether the passes that change the cluster (repair, GC, expiry) run here.
    pub fn is_leader(&self) -> bool {
        self.replica.is_leader()
    }

    /// Writes a snapshot of the index and removes the journal segments it covers.
    pub fn compact(&self) -> Result<u64> {
        let rx = self.replica.request_compaction();
        Replica::wait_reply(&rx, Duration::from_millis(COMMIT_WAIT_MS * 6))
    }
}
