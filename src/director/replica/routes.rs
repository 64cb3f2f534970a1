//! `/_dpyfs/raft/...`, the directors' own endpoints, answered before the S3 front sees
//! the request (they are authenticated by the shared peer token, not by S3 keys):
//! - `GET /_dpyfs/raft/id`: this director's id and URL, its voters (once running) and
//!   its peers' URLs (the `--peer` probe);
//! - `POST /_dpyfs/raft/msg`: a batch of raft messages (`wire::Batch`), answered 204;
//! - `POST /_dpyfs/raft/propose`: journal records from a follower, proposed here (the
//!   leader) and answered once applied, each with its seq or its error;
//! - `POST /_dpyfs/raft/change`: `{"add": URL}` or `{"remove": ID}` from a follower, on
//!   the leader (`members.rs`).

use super::members::DirectorChange;
use super::wire::{Batch, from_wire};
use crate::director::Director;
use crate::http::{Request, Response};
use serde_json::{Map, Value, json};
use std::io::Read;

/// A raft batch or a forwarded commit above this is refused (a snapshot travels in one
/// batch, so this bounds the namespace a group can replicate that way).
pub const RAFT_BODY_BYTES_MAX: u64 = 256 * 1024 * 1024;

fn error(status: u16, code: &str, msg: &str) -> Response {
    Response::json(status, &json!({"error": msg, "code": code}))
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Director {
    /// Answers a `/_dpyfs/raft/...` request; None for every other path.
    pub fn raft_route(&self, req: &mut Request<'_>) -> Option<Response> {
        let rest = req.path.strip_prefix("/_dpyfs/raft/")?.to_string();
        if let Err(resp) = self.raft_auth(req) {
            return Some(resp);
        }
        let r = &self.replica;
        Some(match (req.method.as_str(), rest.as_str()) {
            ("GET", "id") => {
                let v = r.view();
                let voters = if v.running { v.voters } else { Vec::new() };
                let peers: Map<String, Value> = r
                    .peers
                    .urls()
                    .into_iter()
                    .map(|(id, url)| (id.to_string(), Value::from(url)))
                    .collect();
                Response::json(
                    200,
                    &json!({"id": r.id, "url": r.peers.my_url(),
                        "last_index": self.journal.last_seq(), "voters": voters, "peers": peers}),
                )
            }
            ("POST", "change") => match read_json::<Value>(req) {
                Ok(v) => match DirectorChange::from_json(&v).and_then(|c| self.change_here(&c)) {
                    Ok(seq) => Response::json(200, &json!({ "seq": seq })),
                    Err(e) => {
                        let (status, code) = e.status_and_code();
                        error(status, code, &e.client_message())
                    }
                },
                Err(resp) => resp,
            },
            ("POST", "msg") => match read_json::<Batch>(req) {
                Ok(batch) => {
                    if let Some(first) = batch.messages.first() {
                        r.peers.learn(first.from, &batch.from_url);
                    }
                    r.deliver(batch.messages.into_iter().map(from_wire).collect());
                    Response::empty(204)
                }
                Err(resp) => resp,
            },
            ("POST", "propose") => match read_json::<Value>(req) {
                Ok(v) => self.answer_propose(&v),
                Err(resp) => resp,
            },
            _ => error(404, "NoSuchRoute", "no such raft endpoint"),
        })
    }

    fn raft_auth(&self, req: &Request<'_>) -> Result<(), Response> {
        match &self.peer_token {
            Some(token) => {
                let sent = req
                    .header("authorization")
                    .and_then(|h| h.strip_prefix("Bearer "))
                    .unwrap_or("");
                if same(sent.as_bytes(), token.as_bytes()) {
                    Ok(())
                } else {
                    Err(error(
                        403,
                        "AccessDenied",
                        "a director's peer token is required",
                    ))
                }
            }
            // Without a token only directors on this machine may talk (development).
            None if req.remote.is_none_or(|a| a.ip().is_loopback()) => Ok(()),
            None => Err(error(
                403,
                "AccessDenied",
                "directors on other machines need --peer-token-file",
            )),
        }
    }

    fn answer_propose(&self, v: &Value) -> Response {
        let Some(records) = v.get("records").and_then(Value::as_array) else {
            return error(400, "MalformedJSON", "expected {\"records\": [...]}");
        };
        if !self.is_leader() {
            return error(503, "ServiceUnavailable", "this director is not the leader");
        }
        let maps: Vec<Map<String, Value>> = records
            .iter()
            .filter_map(|r| r.as_object().cloned())
            .collect();
        let parses = |m: &Map<String, Value>| {
            let mut m = m.clone();
            m.insert("seq".into(), Value::from(0));
            crate::director::meta::condition::WriteCondition::take_from(&mut m).is_ok()
                && crate::director::meta::records::Record::from_map(m).is_ok()
        };
        if maps.len() != records.len() || !maps.iter().all(parses) {
            return error(
                400,
                "MalformedJSON",
                "every record must be a journal record",
            );
        }
        let results: Vec<Value> = self
            .propose_local(maps)
            .into_iter()
            .map(|res| match res {
                Ok(seq) => json!({"seq": seq}),
                Err(e) => {
                    let (status, code) = e.status_and_code();
                    json!({"status": status, "code": code, "error": e.client_message()})
                }
            })
            .collect();
        Response::json(200, &json!({ "results": results }))
    }
}

fn read_json<T: serde::de::DeserializeOwned>(req: &mut Request<'_>) -> Result<T, Response> {
    let mut body = Vec::new();
    let read = (&mut req.body)
        .take(RAFT_BODY_BYTES_MAX + 1)
        .read_to_end(&mut body);
    if let Err(e) = read {
        return Err(error(400, "IncompleteBody", &e.to_string()));
    }
    if body.len() as u64 > RAFT_BODY_BYTES_MAX {
        return Err(error(
            413,
            "EntityTooLarge",
            "the raft request body is too large",
        ));
    }
    serde_json::from_slice(&body).map_err(|e| error(400, "MalformedJSON", &e.to_string()))
}
