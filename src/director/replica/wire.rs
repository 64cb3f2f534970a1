//! What directors send each other, as JSON, and what a raft entry is in the journal.
//! `src/raft` knows no serde: its types are converted here, field by field, so the wire
//! format changes only on purpose.

use crate::raft::{Entry, EntryData, Envelope, Message, NodeId, Snapshot, SnapshotMeta};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One POST to `/_dpyfs/raft/msg`: messages from one director, with its URL so the
/// receiver learns where to answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub from_url: String,
    pub messages: Vec<WireEnvelope>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireEnvelope {
    pub from: NodeId,
    pub to: NodeId,
    pub term: u64,
    pub message: WireMessage,
}

/// An entry on the wire. `record` is the journal record's JSON text (commands only).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireEntry {
    pub index: u64,
    pub term: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<String>,
    /// The voter set of a configuration entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voters: Option<Vec<NodeId>>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WireMessage {
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
    Append {
        prev_index: u64,
        prev_term: u64,
        entries: Vec<WireEntry>,
        commit: u64,
        read_seq: u64,
    },
    AppendResp {
        success: bool,
        index: u64,
        rejected: u64,
        read_seq: u64,
    },
    /// `data` is the snapshot's state as JSON text.
    InstallSnapshot {
        index: u64,
        term: u64,
        voters: Vec<NodeId>,
        data: String,
        read_seq: u64,
    },
    ReadIndex {
        ctx: u64,
    },
    ReadIndexResp {
        ctx: u64,
        index: u64,
    },
}

fn entry_to_wire(e: &Entry) -> WireEntry {
    let (record, voters) = match &e.data {
        EntryData::Noop => (None, None),
        EntryData::Command(bytes) => (Some(String::from_utf8_lossy(bytes).into_owned()), None),
        EntryData::Config(v) => (None, Some(v.clone())),
    };
    WireEntry {
        index: e.index,
        term: e.term,
        record,
        voters,
    }
}

fn entry_from_wire(w: WireEntry) -> Entry {
    let data = match (w.record, w.voters) {
        (Some(r), _) => EntryData::Command(r.into_bytes()),
        (None, Some(v)) => EntryData::Config(v),
        (None, None) => EntryData::Noop,
    };
    Entry {
        index: w.index,
        term: w.term,
        data,
    }
}

pub fn to_wire(e: &Envelope) -> WireEnvelope {
    let message = match &e.message {
        Message::PreVote {
            last_index,
            last_term,
        } => WireMessage::PreVote {
            last_index: *last_index,
            last_term: *last_term,
        },
        Message::PreVoteResp { granted } => WireMessage::PreVoteResp { granted: *granted },
        Message::Vote {
            last_index,
            last_term,
        } => WireMessage::Vote {
            last_index: *last_index,
            last_term: *last_term,
        },
        Message::VoteResp { granted } => WireMessage::VoteResp { granted: *granted },
        Message::Append {
            prev_index,
            prev_term,
            entries,
            commit,
            read_seq,
        } => WireMessage::Append {
            prev_index: *prev_index,
            prev_term: *prev_term,
            entries: entries.iter().map(entry_to_wire).collect(),
            commit: *commit,
            read_seq: *read_seq,
        },
        Message::AppendResp {
            success,
            index,
            rejected,
            read_seq,
        } => WireMessage::AppendResp {
            success: *success,
            index: *index,
            rejected: *rejected,
            read_seq: *read_seq,
        },
        Message::InstallSnapshot { snapshot, read_seq } => WireMessage::InstallSnapshot {
            index: snapshot.meta.index,
            term: snapshot.meta.term,
            voters: snapshot.meta.config.clone(),
            data: String::from_utf8_lossy(&snapshot.data).into_owned(),
            read_seq: *read_seq,
        },
        Message::ReadIndex { ctx } => WireMessage::ReadIndex { ctx: *ctx },
        Message::ReadIndexResp { ctx, index } => WireMessage::ReadIndexResp {
            ctx: *ctx,
            index: *index,
        },
    };
    WireEnvelope {
        from: e.from,
        to: e.to,
        term: e.term,
        message,
    }
}

pub fn from_wire(w: WireEnvelope) -> Envelope {
    let message = match w.message {
        WireMessage::PreVote {
            last_index,
            last_term,
        } => Message::PreVote {
            last_index,
            last_term,
        },
        WireMessage::PreVoteResp { granted } => Message::PreVoteResp { granted },
        WireMessage::Vote {
            last_index,
            last_term,
        } => Message::Vote {
            last_index,
            last_term,
        },
        WireMessage::VoteResp { granted } => Message::VoteResp { granted },
        WireMessage::Append {
            prev_index,
            prev_term,
            entries,
            commit,
            read_seq,
        } => Message::Append {
            prev_index,
            prev_term,
            entries: entries.into_iter().map(entry_from_wire).collect(),
            commit,
            read_seq,
        },
        WireMessage::AppendResp {
            success,
            index,
            rejected,
            read_seq,
        } => Message::AppendResp {
            success,
            index,
            rejected,
            read_seq,
        },
        WireMessage::InstallSnapshot {
            index,
            term,
            voters,
            data,
            read_seq,
        } => Message::InstallSnapshot {
            snapshot: Snapshot {
                meta: SnapshotMeta {
                    index,
                    term,
                    config: voters,
                },
                data: data.into_bytes(),
            },
            read_seq,
        },
        WireMessage::ReadIndex { ctx } => Message::ReadIndex { ctx },
        WireMessage::ReadIndexResp { ctx, index } => Message::ReadIndexResp { ctx, index },
    };
    Envelope {
        from: w.from,
        to: w.to,
        term: w.term,
        message,
    }
}

/// The journal line of an entry (without `seq`, which the journal adds): a command's
/// record with `"term"` added; `{"type":"noop"}` and `{"type":"directors","voters":[..]}`
/// for raft's own entries.
pub fn entry_to_record(e: &Entry) -> Result<Map<String, Value>, String> {
    let mut m = match &e.data {
        EntryData::Noop => Map::from_iter([("type".to_string(), Value::from("noop"))]),
        EntryData::Config(voters) => Map::from_iter([
            ("type".to_string(), Value::from("directors")),
            ("voters".to_string(), Value::from(voters.clone())),
        ]),
        EntryData::Command(bytes) => match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => m,
            _ => return Err(format!("entry {} is not a JSON record", e.index)),
        },
    };
    m.insert("term".into(), Value::from(e.term));
    Ok(m)
}

/// The entry a journal record (as replay hands it back, with `seq`) stands for. Records
/// written before directors had terms read as term 0.
pub fn record_to_entry(mut m: Map<String, Value>) -> Result<Entry, String> {
    let index = m
        .remove("seq")
        .and_then(|s| s.as_u64())
        .ok_or("record has no seq")?;
    let term = m.remove("term").and_then(|t| t.as_u64()).unwrap_or(0);
    let data = match m.get("type").and_then(Value::as_str) {
        Some("noop") => EntryData::Noop,
        Some("directors") => {
            let voters = m
                .get("voters")
                .cloned()
                .and_then(|v| serde_json::from_value::<Vec<NodeId>>(v).ok())
                .ok_or_else(|| format!("record {index}: a directors record without voters"))?;
            EntryData::Config(voters)
        }
        _ => {
            EntryData::Command(serde_json::to_vec(&m).map_err(|e| format!("record {index}: {e}"))?)
        }
    };
    Ok(Entry { index, term, data })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // Tests: a failed unwrap is a failed test.
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_the_journal_and_the_wire() {
        let cmd = br#"{"bucket":"b","created":1,"type":"bucket_create","v":1}"#.to_vec();
        for data in [
            EntryData::Noop,
            EntryData::Config(vec![3, 5]),
            EntryData::Command(cmd.clone()),
        ] {
            let e = Entry {
                index: 7,
                term: 2,
                data,
            };
            let mut m = entry_to_record(&e).unwrap();
            m.insert("seq".into(), Value::from(7));
            assert_eq!(record_to_entry(m).unwrap(), e);
            let env = Envelope {
                from: 1,
                to: 2,
                term: 2,
                message: Message::Append {
                    prev_index: 6,
                    prev_term: 1,
                    entries: vec![e.clone()],
                    commit: 5,
                    read_seq: 0,
                },
            };
            let text = serde_json::to_string(&to_wire(&env)).unwrap();
            assert_eq!(from_wire(serde_json::from_str(&text).unwrap()), env);
        }
        let old = serde_json::json!({"seq": 4, "type": "bucket_delete", "bucket": "b", "v": 1});
        let Value::Object(m) = old else {
            unreachable!()
        };
        assert_eq!(record_to_entry(m).unwrap().term, 0);
    }
}
