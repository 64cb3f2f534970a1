//! The director's own endpoints, besides S3: `/_dpyfs/...` administration (stores,
//! directors, repair, GC, fsck, object location), the status JSON and page, and `/metrics`. They are
//! methods of the S3 front's `DirectorApi`, which routes to them after authorisation.

use crate::director::error::{DirectorError, Result};
use crate::director::replica::members::{DirectorChange, parse_director_id};
use crate::director::s3::DirectorApi;
use crate::director::s3::target::{Target, parse_target};
use crate::http::{Request, Response};
use serde_json::json;
use std::sync::atomic::Ordering;

impl DirectorApi {
    /// `unsigned`: an unsigned request on a keyed director (only the status page and
    /// status JSON from loopback get here), which sees no recent error messages: they may
    /// name buckets and keys.
    pub(crate) fn admin(
        &self,
        method: &str,
        rest: &str,
        req: &mut Request<'_>,
        unsigned: bool,
    ) -> Result<Response> {
        let d = &self.director;
        let json_ok = |v: serde_json::Value| Ok(Response::json(200, &v));
        match (method, rest) {
            ("GET", "") => Ok(Response::text(
                200,
                "text/html; charset=utf-8",
                crate::status_page::render(&self.status_json_for(unsigned)),
            )
            .with_header("Cache-Control", "no-store")),
            ("GET", "status") => json_ok(self.status_json_for(unsigned)),
            ("POST", "compact") => json_ok(json!({"snapshot_seq": d.compact()?})),
            ("GET", "stores") => json_ok(d.stores.status_json()),
            ("POST", "stores") => self.add_store_route(req),
            ("GET", "repair") => {
                json_ok(serde_json::to_value(d.repairer.snapshot()).unwrap_or_default())
            }
            ("POST", "repair") => {
                d.repairer.request();
                Ok(Response::json(
                    202,
                    &json!({"requested": true, "passes": d.repairer.snapshot().passes}),
                ))
            }
            ("POST", "gc") => {
                let dry = req.query_param("dry-run").is_some_and(|v| v != "0");
                json_ok(serde_json::to_value(d.gc(dry)?).unwrap_or_default())
            }
            ("GET", "fsck") => {
                let deep = req.query_param("deep").is_some_and(|v| v != "0");
                json_ok(serde_json::to_value(d.fsck(deep)).unwrap_or_default())
            }
            ("POST", r) if r.starts_with("stores/") && r.ends_with("/drain") => {
                let id = &r["stores/".len()..r.len() - "/drain".len()];
                d.drain_store(id)?;
                json_ok(json!({"draining": id}))
            }
            ("DELETE", r) if r.starts_with("stores/") => {
                let id = &r["stores/".len()..];
                d.remove_store(id)?;
                json_ok(json!({"removed": id}))
            }
            ("POST", "directors") => self.change_directors(DirectorChange::Add(url_in(req)?)),
            ("DELETE", r) if r.starts_with("directors/") => {
                let id = parse_director_id(&r["directors/".len()..])?;
                self.change_directors(DirectorChange::Remove(id))
            }
            ("GET", r) if r.starts_with("object/") => {
                match parse_target(&format!("/{}", &r["object/".len()..]))? {
                    Target::Object(b, k) => {
                        let copies = req.query_param("copies").is_some_and(|v| v != "0");
                        self.locate(&b, &k, copies)
                    }
                    _ => Err(DirectorError::BadRequest(
                        "InvalidArgument",
                        "use /_dpyfs/object/<bucket>/<key>".into(),
                    )),
                }
            }
            _ => Err(DirectorError::BadRequest(
                "NoSuchRoute",
                format!("no admin route {method} /_dpyfs/{rest}"),
            )),
        }
    }

    /// `dpyfs admin store add`: `{"url": .., "zone": .., "weight": ..}`.
    fn add_store_route(&self, req: &mut Request<'_>) -> Result<Response> {
        let body = read_json_body(req)?;
        let url = url_of(&body)?;
        let zone = body.get("zone").and_then(|z| z.as_str());
        let weight = body.get("weight").and_then(|w| w.as_f64());
        if weight.is_some_and(|w| !(w > 0.0 && w.is_finite())) {
            return Err(DirectorError::BadRequest(
                "InvalidArgument",
                "weight must be a positive number".into(),
            ));
        }
        let id = self.director.add_store(url, zone, weight)?;
        Ok(Response::json(200, &json!({ "id": id })))
    }

    /// `dpyfs admin director add/remove`: answered with the `directors` record's seq and
    /// the voters now.
    fn change_directors(&self, change: DirectorChange) -> Result<Response> {
        let seq = self.director.change_directors(&change)?;
        let voters = self.director.replica.view().voters;
        Ok(Response::json(200, &json!({"seq": seq, "voters": voters})))
    }

    /// An object's chunks and the stores placement names for each (`dpyfs stat`); with
    /// `copies`, also which stores hold a copy now (a HEAD to every store that is up).
    fn locate(&self, bucket: &str, key: &str, copies: bool) -> Result<Response> {
        let m = self.director.read_index().object(bucket, key)?;
        let n = self.director.cfg.replicas;
        let stores = &self.director.stores;
        let describe = |h: &crate::hash::Hash, len: u64| {
            let order = stores.placement(h);
            let mut v = json!({
                "hash": h.to_hex(),
                "len": len,
                "placement": order.iter().take(n).map(|t| &t.id).collect::<Vec<_>>(),
                "order": order.iter().map(|t| json!({"id": t.id, "url": t.url, "up": t.up})).collect::<Vec<_>>(),
            });
            if copies {
                let held: Vec<String> = stores
                    .read_order(h)
                    .into_iter()
                    .filter(|t| t.up)
                    .filter(|t| matches!(stores.client.head_chunk(&t.url, h), Ok(Some(_))))
                    .map(|t| t.id)
                    .collect();
                v["held_by"] = json!(held);
            }
            v
        };
        let chunks: Vec<_> = m
            .chunks
            .iter()
            .map(|c| describe(&c.hash, u64::from(c.len)))
            .collect();
        Ok(Response::json(
            200,
            &json!({
                "bucket": bucket, "key": key, "size": m.size, "etag": m.etag,
                "mtime": m.mtime_ms, "content_type": m.content_type, "meta": m.meta,
                "replicas": n, "chunks": chunks, "manifest": describe(&m.manifest, 0),
                "inline": m.inline,
            }),
        ))
    }

    /// `status_json`, with the recent errors' messages left out when `redact`.
    pub(crate) fn status_json_for(&self, redact: bool) -> serde_json::Value {
        let mut v = self.status_json();
        if redact {
            for e in v["recent_errors"].as_array_mut().into_iter().flatten() {
                e["message"] = json!("(sign the request to see the message)");
            }
        }
        v
    }

    pub fn status_json(&self) -> serde_json::Value {
        let d = &self.director;
        let (buckets, objects) = {
            let idx = d.read_index();
            (idx.buckets.len(), idx.object_count())
        };
        let c = &d.counters;
        let mut v = json!({
            "version": crate::VERSION,
            "uptime_seconds": self.started.elapsed().as_secs(),
            "replicas": d.cfg.replicas,
            "buckets": buckets,
            "objects": objects,
            "journal": {
                "last_seq": d.journal.last_seq(),
                "bytes": d.journal.bytes(),
                "fsyncs": d.journal.sync_count(),
            },
            "chunks": {
                "written": c.chunks_written.load(Ordering::Relaxed),
                "deduplicated": c.chunks_deduplicated.load(Ordering::Relaxed),
                "bad_copies_seen": c.bad_copies.load(Ordering::Relaxed),
                "missing_copies_seen": c.missing_copies.load(Ordering::Relaxed),
            },
            "bytes_in": c.bytes_in.load(Ordering::Relaxed),
            "bytes_out": c.bytes_out.load(Ordering::Relaxed),
            "stores": d.stores.status_json(),
            "repair": d.repairer.snapshot(),
            "recent_errors": crate::logring::snapshot(),
            "tls_warnings": crate::tls::expiry_warnings(crate::timefmt::now_ms() / 1000),
        });
        if let Some(m) = v.as_object_mut() {
            m.extend(d.replica.status_fields());
        }
        v
    }

    pub(crate) fn metrics_text(&self) -> Response {
        let stores = self.director.stores.snapshot();
        let mut text = self.metrics.render("dpyfs_director", &self.gauges(&stores));
        let up: Vec<(String, f64)> = stores
            .iter()
            .map(|s| (s.id.clone(), if s.up { 1.0 } else { 0.0 }))
            .collect();
        crate::metrics::render_labeled_gauge(
            &mut text,
            "dpyfs_director_store_up",
            "1 if the store answers, 0 if not.",
            "store",
            &up,
        );
        Response::text(200, "text/plain; version=0.0.4", text)
    }

    /// The director's gauges and counters for `/metrics`: (name, help, value).
    fn gauges(
        &self,
        stores: &[crate::director::data::stores::StoreState],
    ) -> Vec<(&'static str, &'static str, f64)> {
        let d = &self.director;
        let c = &d.counters;
        let (buckets, objects) = {
            let idx = d.read_index();
            (idx.buckets.len(), idx.object_count())
        };
        let repair = d.repairer.snapshot();
        vec![
            (
                "under_replicated_chunks",
                "Chunks with fewer than N copies after the last repair pass.",
                repair.under_replicated as f64,
            ),
            (
                "lost_chunks",
                "Chunks with no good copy after the last repair pass.",
                repair.lost_chunks as f64,
            ),
            ("objects", "Objects in the namespace.", objects as f64),
            ("buckets", "Buckets.", buckets as f64),
            (
                "stores_up",
                "Stores answering.",
                stores.iter().filter(|s| s.up).count() as f64,
            ),
            (
                "stores_down",
                "Stores not answering.",
                stores.iter().filter(|s| !s.up).count() as f64,
            ),
            (
                "journal_bytes",
                "Bytes of journal segments on disk.",
                d.journal.bytes() as f64,
            ),
            (
                "journal_fsyncs_total",
                "Journal fsyncs.",
                d.journal.sync_count() as f64,
            ),
            (
                "chunks_written_total",
                "Chunks written to stores.",
                c.chunks_written.load(Ordering::Relaxed) as f64,
            ),
            (
                "chunks_deduplicated_total",
                "Chunks already stored.",
                c.chunks_deduplicated.load(Ordering::Relaxed) as f64,
            ),
            (
                "bad_copies_total",
                "Chunk copies that failed verification on read.",
                c.bad_copies.load(Ordering::Relaxed) as f64,
            ),
            (
                "object_bytes_in_total",
                "Object bytes stored.",
                c.bytes_in.load(Ordering::Relaxed) as f64,
            ),
            (
                "object_bytes_out_total",
                "Object bytes served.",
                c.bytes_out.load(Ordering::Relaxed) as f64,
            ),
        ]
    }
}

/// Admin request bodies are small JSON documents.
const ADMIN_BODY_BYTES_MAX: u64 = 64 * 1024;

/// The `"url"` of a request body.
fn url_of(body: &serde_json::Value) -> Result<&str> {
    body.get("url")
        .and_then(|u| u.as_str())
        .ok_or_else(|| DirectorError::BadRequest("InvalidArgument", "give {\"url\": ...}".into()))
}

/// The `{"url": ...}` of a request body, without a trailing slash.
fn url_in(req: &mut Request<'_>) -> Result<String> {
    let body = read_json_body(req)?;
    Ok(url_of(&body)?.trim_end_matches('/').to_string())
}

fn read_json_body(req: &mut Request<'_>) -> Result<serde_json::Value> {
    // A longer body used to be cut at the limit and then fail as malformed JSON; it is
    // now refused as too long.
    let body = crate::director::s3::body::read_small(req, ADMIN_BODY_BYTES_MAX, |max| {
        DirectorError::BadRequest(
            "MaxMessageLengthExceeded",
            format!("the body is larger than {max} bytes"),
        )
    })?;
    serde_json::from_slice(&body).map_err(|e| {
        DirectorError::BadRequest("MalformedJSON", format!("the body is not JSON: {e}"))
    })
}
