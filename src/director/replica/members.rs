//! `dpyfs admin director add URL` / `remove ID`: the group's voters change one at a time
//! (Raft's single-server changes, `Node::propose_change`), journaled as a `directors`
//! record. Any director takes the request; the leader alone proposes it. Refused, each
//! with its own code, while another change is not committed yet, when the change would
//! leave fewer voters answering than a majority of the new group, when the director to
//! add does not answer, or when it changes nothing.

use super::commit::forwarded_error;
use super::shared::{COMMIT_WAIT_MS, LEADER_WAIT_MS, Replica, unavailable};
use crate::director::Director;
use crate::director::error::{DirectorError, Result};
use crate::raft::{ConfigChange, NodeId, ProposeError};
use serde_json::{Value, json};
use std::time::Duration;

/// One change of the group's voters, as an administrator asks for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirectorChange {
    /// The director answering at this URL (started with `--peer` to the group) votes.
    Add(String),
    Remove(NodeId),
}

impl DirectorChange {
    /// `{"add": URL}` or `{"remove": ID}`, as a follower forwards it to the leader.
    pub fn to_json(&self) -> Value {
        match self {
            DirectorChange::Add(url) => json!({ "add": url }),
            DirectorChange::Remove(id) => json!({ "remove": id }),
        }
    }

    pub fn from_json(v: &Value) -> Result<DirectorChange> {
        if let Some(url) = v.get("add").and_then(Value::as_str) {
            return Ok(DirectorChange::Add(url.trim_end_matches('/').to_string()));
        }
        if let Some(id) = v.get("remove").and_then(Value::as_u64) {
            return Ok(DirectorChange::Remove(id));
        }
        Err(DirectorError::BadRequest(
            "InvalidArgument",
            "expected {\"add\": URL} or {\"remove\": ID}".into(),
        ))
    }
}

/// A director id as `remove` takes it (decimal, as status shows it).
pub fn parse_director_id(s: &str) -> Result<NodeId> {
    s.parse::<NodeId>()
        .ok()
        .filter(|id| *id != 0)
        .ok_or_else(|| {
            DirectorError::BadRequest(
                "InvalidArgument",
                format!("{s:?} is not a director id (the decimal number status shows)"),
            )
        })
}

/// The raft node's refusal in the administrator's words.
pub fn change_refused(e: ProposeError, change: ConfigChange) -> DirectorError {
    match (e, change) {
        (ProposeError::ChangeInProgress, _) => DirectorError::Conflict(
            "DirectorChangeInProgress",
            "another change of directors is not committed yet (or the leader is new): \
             one change at a time; try again in a moment"
                .into(),
        ),
        (ProposeError::Unchanged, ConfigChange::Add(id)) => DirectorError::Conflict(
            "DirectorExists",
            format!("director {id} already votes in this group"),
        ),
        (ProposeError::Unchanged, ConfigChange::Remove(id)) => DirectorError::S3(
            404,
            "NoSuchDirector",
            format!("director {id} does not vote in this group"),
        ),
        (ProposeError::NotLeader { .. }, _) => unavailable("this director is not the leader"),
    }
}

/// Refuses a change after which fewer voters answer than a majority of the new group
/// (it could commit nothing, its own record included). `up` says which voters answered
/// within an election timeout; a director being added answered its probe just now.
pub fn check_majority_after(
    voters: &[NodeId],
    change: ConfigChange,
    up: impl Fn(NodeId) -> bool,
) -> Result<()> {
    let after: Vec<NodeId> = match change {
        ConfigChange::Add(id) => voters.iter().copied().chain([id]).collect(),
        ConfigChange::Remove(id) => voters.iter().copied().filter(|v| *v != id).collect(),
    };
    let answering = after
        .iter()
        .filter(|v| matches!(change, ConfigChange::Add(id) if id == **v) || up(**v))
        .count();
    if after.is_empty() || answering * 2 <= after.len() {
        return Err(DirectorError::Conflict(
            "DirectorQuorumAtRisk",
            format!(
                "after this change {} director(s) would vote and only {answering} of them \
                 answer now: no majority could commit anything; bring the others back first \
                 (or see OPERATIONS.md, two of three gone for good)",
                after.len()
            ),
        ));
    }
    Ok(())
}

impl Director {
    /// Changes the voters through the leader (this director or the one it forwards to);
    /// returns the seq of the `directors` record once this director has applied it.
    pub fn change_directors(&self, change: &DirectorChange) -> Result<u64> {
        let r = &self.replica;
        let leader = r.wait_leader(Duration::from_millis(LEADER_WAIT_MS));
        let url = match leader {
            Some(id) if id == r.id => return self.change_here(change),
            Some(id) => r.peers.url_of(id),
            None => None,
        };
        let Some(url) = url else {
            return Err(unavailable("no leader among the directors right now"));
        };
        let seq = r
            .peers
            .forward_change(&url, &change.to_json())
            .map_err(|(status, code, msg)| forwarded_error(status, &code, msg))?;
        r.wait_applied(seq, Duration::from_millis(COMMIT_WAIT_MS))?;
        Ok(seq)
    }

    /// The leader's side of `change_directors`.
    pub fn change_here(&self, change: &DirectorChange) -> Result<u64> {
        let r = &self.replica;
        if !r.is_leader() {
            return Err(unavailable("this director is not the leader"));
        }
        let c = match change {
            DirectorChange::Add(url) => {
                let p = r.peers.probe(url).map_err(|e| {
                    DirectorError::BadRequest(
                        "DirectorUnreachable",
                        format!("{url} does not answer as a director ({e}); start it first"),
                    )
                })?;
                if p.id != r.id {
                    r.peers.learn(p.id, url);
                }
                ConfigChange::Add(p.id)
            }
            DirectorChange::Remove(id) => ConfigChange::Remove(*id),
        };
        let rx = r.change(c);
        Replica::wait_reply(&rx, Duration::from_millis(COMMIT_WAIT_MS))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn a_change_that_leaves_no_majority_answering_is_refused() {
        let up = |v: NodeId| v != 3;
        // Three voters, 3 down: removing a live one leaves {2, 3} with one answering.
        let e = check_majority_after(&[1, 2, 3], ConfigChange::Remove(1), up).unwrap_err();
        assert_eq!(e.status_and_code(), (409, "DirectorQuorumAtRisk"));
        // Removing the one that is down leaves {1, 2}, both answering.
        check_majority_after(&[1, 2, 3], ConfigChange::Remove(3), up).unwrap();
        // Growing 1 -> 2 with a director that answered its probe.
        check_majority_after(&[1], ConfigChange::Add(9), up).unwrap();
        // Four voters with one down, plus a fifth: 4 of 5 answer.
        check_majority_after(&[1, 2, 3, 4], ConfigChange::Add(5), up).unwrap();
        // Never an empty group.
        assert!(check_majority_after(&[1], ConfigChange::Remove(1), |_| true).is_err());
        // Two of three down: growing to four does not help.
        assert!(check_majority_after(&[1, 2, 3], ConfigChange::Add(4), |v| v == 1).is_err());
    }

    #[test]
    fn changes_parse_and_refusals_carry_codes() {
        for c in [
            DirectorChange::Add("http://a:7070".into()),
            DirectorChange::Remove(42),
        ] {
            assert_eq!(DirectorChange::from_json(&c.to_json()).unwrap(), c);
        }
        assert!(DirectorChange::from_json(&json!({"remove": "x"})).is_err());
        assert_eq!(parse_director_id("17").unwrap(), 17);
        assert!(parse_director_id("0").is_err() && parse_director_id("a").is_err());
        let code = |e: ProposeError, c| change_refused(e, c).status_and_code();
        assert_eq!(
            code(ProposeError::ChangeInProgress, ConfigChange::Add(2)),
            (409, "DirectorChangeInProgress")
        );
        assert_eq!(
            code(ProposeError::Unchanged, ConfigChange::Add(2)),
            (409, "DirectorExists")
        );
        assert_eq!(
            code(ProposeError::Unchanged, ConfigChange::Remove(2)),
            (404, "NoSuchDirector")
        );
    }
}
