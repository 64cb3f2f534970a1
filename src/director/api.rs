//! The director's HTTP API (path-style S3) as a function from `Request` to `Response`:
//! routing, URL decoding and key validation (in one place), S3 XML bodies and errors.
//! No sockets here (see `crate::http`).

use super::Director;
use super::auth::{Access, Auth};
use super::body;
use super::error::{DirectorError, Result};
use super::index::{ListEntry, ObjectMeta, Record, valid_bucket_name, validate_key};
use super::multipart_api;
use super::objects::{
    check_acl_headers, owner, read_preconditions, refuse_unknown_params, response_overrides,
    stored_headers, subresource, user_meta, write_condition,
};
use super::write::NewObject;
use super::xml::Doc;
use crate::http::{Body, Request, Response, percent_decode, percent_encode};
use crate::metrics::Metrics;
use crate::timefmt::{http_date, iso8601, now_ms};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Most keys one listing page returns (S3's limit).
pub const LIST_KEYS_MAX: usize = 1000;
/// Content type of objects uploaded without one (as S3).
pub const CONTENT_TYPE_DEFAULT: &str = "binary/octet-stream";

pub struct DirectorApi {
    pub director: Arc<Director>,
    pub metrics: Metrics,
    /// Verifies every request before it is routed (open when there is no keys file).
    pub auth: Auth,
    started: Instant,
    request_ids: std::sync::atomic::AtomicU64,
}

/// Where a request points, after decoding.
pub(super) enum Target {
    Service,
    Bucket(String),
    Object(String, String),
}

pub(super) fn parse_target(path: &str) -> Result<Target> {
    let p = path.strip_prefix('/').unwrap_or(path);
    if p.is_empty() {
        return Ok(Target::Service);
    }
    let (b, k) = match p.split_once('/') {
        Some((b, k)) => (b, Some(k)),
        None => (p, None),
    };
    let bucket =
        percent_decode(b, false).ok_or_else(|| DirectorError::InvalidBucketName(b.to_string()))?;
    if !valid_bucket_name(&bucket) {
        return Err(DirectorError::InvalidBucketName(bucket));
    }
    match k {
        None | Some("") => Ok(Target::Bucket(bucket)),
        Some(k) => {
            let key = percent_decode(k, false).ok_or_else(|| {
                DirectorError::InvalidKey("the key is not valid UTF-8 once decoded".into())
            })?;
            validate_key(&key)?;
            Ok(Target::Object(bucket, key))
        }
    }
}

/// What `access` may do, checked for every route before its handler runs (the table in
/// docs/ARCHITECTURE.md, "Authentication: what is open when").
fn authorize(access: &Access, method: &str, path: &str, req: &Request<'_>) -> Result<()> {
    // The status page and the metrics hold counts, not names or data: open to loopback
    // clients even when keys are configured, like a store's /status.
    let local = req.remote.is_none_or(|a| a.ip().is_loopback());
    if let Some(rest) = path.strip_prefix("/_dpyfs/") {
        // `rest` empty: the status page, the same figures as HTML.
        if local && method == "GET" && (rest == "status" || rest.is_empty()) {
            return Ok(());
        }
        return access.check_admin();
    }
    if path == "/metrics" && method == "GET" {
        if local {
            return Ok(());
        }
        return access.check_admin();
    }
    // Unsigned requests learn nothing, not even whether a bucket name is valid.
    access.check_signed()?;
    let bucket = match parse_target(path) {
        Ok(Target::Bucket(b)) | Ok(Target::Object(b, _)) => b,
        // ListBuckets shows only the key's buckets; a bad name is the router's to refuse.
        Ok(Target::Service) | Err(_) => return Ok(()),
    };
    access.check_bucket(&bucket)?;
    // A copy (CopyObject, UploadPartCopy) reads its source bucket too.
    match req.header("x-amz-copy-source") {
        Some(src) => access.check_bucket(&copy_source_bucket(src)),
        None => Ok(()),
    }
}

/// The bucket named by `x-amz-copy-source` (`bucket/key` or `/bucket/key`, URL-encoded),
/// for the access check; a malformed header is the copy handler's to refuse.
fn copy_source_bucket(src: &str) -> String {
    let s = src.trim().trim_start_matches('/');
    let b = s.split('/').next().unwrap_or("");
    percent_decode(b, false).unwrap_or_else(|| b.to_string())
}

/// A parsed `Range` header against an object of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeSpec {
    Full,
    /// `start..end`, end exclusive.
    Part(u64, u64),
    Unsatisfiable,
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n`. Syntax we do not understand (or several ranges)
/// is ignored and the whole object sent, as RFC 9110 allows.
pub fn parse_range(header: Option<&str>, size: u64) -> RangeSpec {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeSpec::Full;
    };
    if spec.contains(',') {
        return RangeSpec::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return match b.parse::<u64>() {
            Ok(0) => RangeSpec::Unsatisfiable,
            Ok(_) if size == 0 => RangeSpec::Unsatisfiable,
            Ok(n) => RangeSpec::Part(size.saturating_sub(n), size),
            Err(_) => RangeSpec::Full,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeSpec::Full;
    };
    let end_incl = if b.is_empty() {
        u64::MAX
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e,
            _ => return RangeSpec::Full,
        }
    };
    if start >= size {
        return RangeSpec::Unsatisfiable;
    }
    RangeSpec::Part(start, end_incl.min(size - 1) + 1)
}

impl DirectorApi {
    pub fn new(director: Arc<Director>) -> DirectorApi {
        DirectorApi {
            director,
            metrics: Metrics::default(),
            auth: Auth::open(),
            started: Instant::now(),
            request_ids: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// The same API with keys: requests must be signed.
    pub fn with_auth(mut self, auth: Auth) -> DirectorApi {
        self.auth = auth;
        self
    }

    pub fn handle(&self, req: &mut Request<'_>) -> Response {
        let rid = format!("{:016x}", self.request_ids.fetch_add(1, Ordering::Relaxed));
        let t0 = Instant::now();
        // Before any routing or body reading: a refused request touches nothing.
        let now = now_ms();
        let (route, result) = match self.auth.verify(req, now) {
            Ok(mut access) => self.route(req, &mut access),
            Err(e) if super::auth::body_hash_may_be_signed(req, &e) => {
                self.route_buffered(req, now)
            }
            Err(e) => ("auth", Err(e)),
        };
        let resp = match result {
            Ok(r) => r,
            Err(e) => self.error(&e, &req.path, &rid),
        };
        self.metrics.record(route, resp.status);
        self.metrics.observe(route, t0.elapsed().as_secs_f64());
        resp.with_header("x-amz-request-id", rid)
    }

    /// A small body read into memory and its hash tried as the signed payload: curl's
    /// `--aws-sigv4 --data ...` signs the hash of its body without sending it.
    fn route_buffered(&self, req: &mut Request<'_>, now: u64) -> (&'static str, Result<Response>) {
        let mut body = Vec::new();
        let limit = super::auth::SIGNED_BODY_BYTES_MAX;
        if let Err(e) =
            std::io::Read::read_to_end(&mut std::io::Read::take(&mut req.body, limit), &mut body)
        {
            return ("auth", Err(DirectorError::BodyRead(e.to_string())));
        }
        let hash = crate::sigv4::sha256_hex(&body);
        let mut cursor = std::io::Cursor::new(body);
        let mut buffered = Request {
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            headers: req.headers.clone(),
            body: &mut cursor,
            body_len: req.body_len,
            remote: req.remote,
        };
        match self.auth.verify_with_body_hash(&buffered, now, &hash) {
            Ok(mut access) => self.route(&mut buffered, &mut access),
            Err(e) => ("auth", Err(e)),
        }
    }

    fn error(&self, e: &DirectorError, resource: &str, rid: &str) -> Response {
        let (status, code) = e.status_and_code();
        if status >= 500 {
            log::error!("{resource}: {e}");
        }
        let mut d = Doc::bare("Error");
        d.elem("Code", code)
            .elem("Message", &e.client_message())
            .elem("Resource", resource)
            .elem("RequestId", rid);
        let mut r = Response::text(status, "application/xml", d.finish("Error"));
        if let DirectorError::InvalidRange { size } = e {
            r = r.with_header("Content-Range", format!("bytes */{size}"));
        }
        r
    }

    /// Routes a verified request. `access` says who sent it (checked by `authorize` before
    /// any handler runs); `access.chain` is for whoever reads a streaming body.
    fn route(
        &self,
        req: &mut Request<'_>,
        access: &mut Access,
    ) -> (&'static str, Result<Response>) {
        let method = req.method.clone();
        let path = req.path.clone();
        if let Err(e) = authorize(access, &method, &path, req) {
            return ("auth", Err(e));
        }
        if let Some(rest) = path.strip_prefix("/_dpyfs/") {
            let unsigned = matches!(access.principal, super::auth::Principal::Anonymous);
            return ("admin", self.admin(&method, rest, req, unsigned));
        }
        if path == "/metrics" && method == "GET" {
            return ("metrics", Ok(self.metrics_text()));
        }
        let target = match parse_target(&path) {
            Ok(t) => t,
            Err(e) => return ("invalid", Err(e)),
        };
        if let Some(op) = multipart_api::op(&method, &target, req) {
            if let Err(e) = refuse_unknown_params(&req.query, op.params()) {
                return ("unsupported", Err(e));
            }
            return self.multipart(op, target, req, access.chain.take());
        }
        let sub = match subresource(&method, &target, req) {
            Ok(s) => s,
            Err(e) => return ("unsupported", Err(e)),
        };
        if let Some(sub) = sub {
            return ("subresource", self.subresource(&method, &target, sub, req));
        }
        match (method.as_str(), target) {
            ("GET", Target::Service) => ("list_buckets", self.list_buckets(access)),
            ("PUT", Target::Bucket(b)) => ("create_bucket", self.create_bucket(b)),
            ("DELETE", Target::Bucket(b)) => ("delete_bucket", self.delete_bucket(b)),
            ("HEAD", Target::Bucket(b)) => ("head_bucket", self.head_bucket(&b)),
            ("GET", Target::Bucket(b)) => ("list_objects", self.list_objects(&b, req)),
            ("POST", Target::Bucket(b)) if req.query_param("delete").is_some() => {
                ("delete_objects", self.delete_objects(b, req))
            }
            ("PUT", Target::Object(b, k)) if req.header("x-amz-copy-source").is_some() => {
                ("copy_object", self.copy_object(b, k, req))
            }
            ("PUT", Target::Object(b, k)) => (
                "put_object",
                self.put_object(b, k, req, access.chain.take()),
            ),
            ("GET", Target::Object(b, k)) => ("get_object", self.get_object(&b, &k, req, true)),
            ("HEAD", Target::Object(b, k)) => ("head_object", self.get_object(&b, &k, req, false)),
            ("DELETE", Target::Object(b, k)) => ("delete_object", self.delete_object(b, k)),
            (m, _) => (
                "other",
                Err(DirectorError::MethodNotAllowed(format!(
                    "{m} is not supported on {path}"
                ))),
            ),
        }
    }

    /// The buckets `access` may touch (a key with a bucket list sees only those).
    fn list_buckets(&self, access: &Access) -> Result<Response> {
        let idx = self.director.read_index();
        let mut d = Doc::new("ListAllMyBucketsResult");
        d.open("Owner")
            .elem("ID", "dpyfs")
            .elem("DisplayName", "dpyfs")
            .close("Owner")
            .open("Buckets");
        for (name, b) in idx.buckets.iter().filter(|(n, _)| access.may_touch(n)) {
            d.open("Bucket")
                .elem("Name", name)
                .elem("CreationDate", &iso8601(b.created_ms))
                .close("Bucket");
        }
        d.close("Buckets");
        Ok(xml(200, d.finish("ListAllMyBucketsResult")))
    }

    fn create_bucket(&self, bucket: String) -> Result<Response> {
        let location = format!("/{bucket}");
        self.director.commit(&Record::BucketCreate {
            bucket,
            created: now_ms(),
        })?;
        Ok(Response::empty(200).with_header("Location", location))
    }

    fn delete_bucket(&self, bucket: String) -> Result<Response> {
        self.director.commit(&Record::BucketDelete { bucket })?;
        Ok(Response::empty(204))
    }

    fn head_bucket(&self, bucket: &str) -> Result<Response> {
        self.director.read_index().bucket(bucket)?;
        Ok(Response::empty(200))
    }

    fn list_objects(&self, bucket: &str, req: &Request<'_>) -> Result<Response> {
        let v2 = req.query_param("list-type").as_deref() == Some("2");
        let prefix = req.query_param("prefix").unwrap_or_default();
        let delimiter = req.query_param("delimiter").unwrap_or_default();
        let max = match req.query_param("max-keys") {
            None => LIST_KEYS_MAX,
            Some(m) => m.parse::<usize>().map_err(|_| {
                DirectorError::BadRequest(
                    "InvalidArgument",
                    format!("max-keys {m:?} is not a number"),
                )
            })?,
        }
        .min(LIST_KEYS_MAX);
        let url_encode = req.query_param("encoding-type").as_deref() == Some("url");
        // V1 always names the owner; V2 only when asked.
        let with_owner = !v2 || req.query_param("fetch-owner").as_deref() == Some("true");
        let token = req.query_param("continuation-token");
        let after = if v2 {
            match &token {
                Some(t) => Some(decode_token(t)?),
                None => req.query_param("start-after"),
            }
        } else {
            req.query_param("marker")
        };
        let page = self.director.read_index().list(
            bucket,
            &prefix,
            &delimiter,
            after.as_deref().filter(|a| !a.is_empty()),
            max,
        )?;
        let enc = |s: &str| {
            if url_encode {
                percent_encode(s, true)
            } else {
                s.to_string()
            }
        };
        let mut d = Doc::new("ListBucketResult");
        d.elem("Name", bucket)
            .elem("Prefix", &enc(&prefix))
            .elem("MaxKeys", &max.to_string())
            .elem("IsTruncated", if page.truncated { "true" } else { "false" });
        if !delimiter.is_empty() {
            d.elem("Delimiter", &enc(&delimiter));
        }
        if url_encode {
            d.elem("EncodingType", "url");
        }
        if v2 {
            d.elem("KeyCount", &page.entries.len().to_string());
            if let Some(t) = &token {
                d.elem("ContinuationToken", t);
            }
            if let Some(s) = req.query_param("start-after") {
                d.elem("StartAfter", &enc(&s));
            }
            if let Some(n) = &page.next_after {
                d.elem("NextContinuationToken", &crate::hash::to_hex(n.as_bytes()));
            }
        } else {
            d.elem(
                "Marker",
                &enc(&req.query_param("marker").unwrap_or_default()),
            );
            if let Some(n) = &page.next_after {
                d.elem("NextMarker", &enc(n));
            }
        }
        for e in &page.entries {
            match e {
                ListEntry::Object(k, m) => {
                    d.open("Contents")
                        .elem("Key", &enc(k))
                        .elem("LastModified", &iso8601(m.mtime_ms))
                        .elem("ETag", &format!("\"{}\"", m.etag))
                        .elem("Size", &m.size.to_string());
                    if with_owner {
                        owner(&mut d);
                    }
                    d.elem("StorageClass", "STANDARD").close("Contents");
                }
                ListEntry::CommonPrefix(p) => {
                    d.open("CommonPrefixes")
                        .elem("Prefix", &enc(p))
                        .close("CommonPrefixes");
                }
            }
        }
        Ok(xml(200, d.finish("ListBucketResult")))
    }

    fn put_object(
        &self,
        bucket: String,
        key: String,
        req: &mut Request<'_>,
        chain: Option<Box<dyn body::SignatureChain>>,
    ) -> Result<Response> {
        check_acl_headers(req)?;
        let new = NewObject {
            bucket,
            key,
            content_type: req
                .header("content-type")
                .unwrap_or(CONTENT_TYPE_DEFAULT)
                .to_string(),
            meta: user_meta(req),
            headers: stored_headers(req),
            condition: write_condition(req)?,
            checksum: None,
        };
        // A signed streaming body's chunk signatures are checked through `chain`.
        let mut body = body::open(req, chain)?;
        let m = self.director.put_object(new, &mut body)?;
        let mut r = Response::empty(200).with_header("ETag", format!("\"{}\"", m.etag));
        if let Some((alg, value)) = &m.checksum {
            r = r.with_header(&format!("x-amz-checksum-{alg}"), value.clone());
        }
        Ok(r)
    }

    fn get_object(
        &self,
        bucket: &str,
        key: &str,
        req: &Request<'_>,
        with_body: bool,
    ) -> Result<Response> {
        let m = self.director.read_index().object(bucket, key)?;
        if let Some(r) = read_preconditions(req, &m)? {
            return Ok(r);
        }
        let (status, start, end) = match parse_range(req.header("range"), m.size) {
            RangeSpec::Full => (200, 0, m.size),
            RangeSpec::Part(a, b) => (206, a, b),
            RangeSpec::Unsatisfiable => return Err(DirectorError::InvalidRange { size: m.size }),
        };
        let body: Box<dyn std::io::Read + Send> = if with_body {
            Box::new(self.director.open_read(&m, start, end)?)
        } else {
            Box::new(std::io::empty())
        };
        let mut r = object_headers(
            Response::new(status, Body::Stream(body, Some(end - start))),
            &m,
        );
        // As S3: the stored checksum only when asked for, and only for the whole object.
        let asked = req
            .header("x-amz-checksum-mode")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("ENABLED"));
        if let (true, 200, Some((alg, value))) = (asked, status, &m.checksum) {
            r = r.with_header(&format!("x-amz-checksum-{alg}"), value.clone());
        }
        r = response_overrides(r, req)?;
        if status == 206 {
            r = r.with_header(
                "Content-Range",
                format!("bytes {start}-{}/{}", end - 1, m.size),
            );
        }
        Ok(r)
    }

    fn delete_object(&self, bucket: String, key: String) -> Result<Response> {
        // Deleting a missing key succeeds, as in S3; a missing bucket does not.
        self.director
            .commit(&Record::ObjectDelete { bucket, key })?;
        Ok(Response::empty(204))
    }

    /// `unsigned`: an unsigned request on a keyed director (only the status page and
    /// status JSON from loopback get here), which sees no recent error messages: they may
    /// name buckets and keys.
    fn admin(
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
                super::page::render(&self.status_json_for(unsigned)),
            )
            .with_header("Cache-Control", "no-store")),
            ("GET", "status") => json_ok(self.status_json_for(unsigned)),
            ("POST", "compact") => json_ok(json!({"snapshot_seq": d.compact()?})),
            ("GET", "stores") => json_ok(d.stores.status_json()),
            ("POST", "stores") => {
                let body = read_json_body(req)?;
                let url = body.get("url").and_then(|u| u.as_str()).ok_or_else(|| {
                    DirectorError::BadRequest("InvalidArgument", "give {\"url\": ...}".into())
                })?;
                let zone = body.get("zone").and_then(|z| z.as_str());
                let weight = body.get("weight").and_then(|w| w.as_f64());
                if weight.is_some_and(|w| !(w > 0.0 && w.is_finite())) {
                    return Err(DirectorError::BadRequest(
                        "InvalidArgument",
                        "weight must be a positive number".into(),
                    ));
                }
                json_ok(json!({"id": d.add_store(url, zone, weight)?}))
            }
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
            }),
        ))
    }

    /// `status_json`, with the recent errors' messages left out when `redact`.
    fn status_json_for(&self, redact: bool) -> serde_json::Value {
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
        json!({
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
        })
    }

    fn metrics_text(&self) -> Response {
        let d = &self.director;
        let c = &d.counters;
        let (buckets, objects) = {
            let idx = d.read_index();
            (idx.buckets.len(), idx.object_count())
        };
        let stores = d.stores.snapshot();
        let repair = d.repairer.snapshot();
        let gauges = [
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
        ];
        let mut text = self.metrics.render("dpyfs_director", &gauges);
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
}

/// Admin request bodies are small JSON documents.
const ADMIN_BODY_BYTES_MAX: u64 = 64 * 1024;

pub(super) fn read_json_body(req: &mut Request<'_>) -> Result<serde_json::Value> {
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(&mut req.body, ADMIN_BODY_BYTES_MAX),
        &mut text,
    )
    .map_err(|e| DirectorError::BodyRead(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| {
        DirectorError::BadRequest("MalformedJSON", format!("the body is not JSON: {e}"))
    })
}

pub(super) fn xml(status: u16, body: String) -> Response {
    Response::text(status, "application/xml", body)
}

/// The continuation token is the hex of the last key returned: opaque to clients, and
/// safe in a URL without further encoding.
fn decode_token(t: &str) -> Result<String> {
    let bad = || {
        DirectorError::BadRequest(
            "InvalidArgument",
            "the continuation token is invalid".into(),
        )
    };
    if t.len() % 2 == 1 {
        return Err(bad());
    }
    let bytes: Option<Vec<u8>> = (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(t.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes.ok_or_else(bad)?).map_err(|_| bad())
}

pub(super) fn object_headers(mut r: Response, m: &ObjectMeta) -> Response {
    r = r
        .with_header("ETag", format!("\"{}\"", m.etag))
        .with_header("Last-Modified", http_date(m.mtime_ms))
        .with_header("Content-Type", m.content_type.clone())
        .with_header("Accept-Ranges", "bytes");
    for (k, v) in &m.headers {
        r = r.with_header(k, v.clone());
    }
    for (k, v) in &m.meta {
        r = r.with_header(&format!("x-amz-meta-{k}"), v.clone());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeSpec::*;
        assert_eq!(parse_range(None, 10), Full);
        assert_eq!(parse_range(Some("bytes=0-4"), 10), Part(0, 5));
        assert_eq!(parse_range(Some("bytes=5-"), 10), Part(5, 10));
        assert_eq!(parse_range(Some("bytes=-3"), 10), Part(7, 10));
        assert_eq!(parse_range(Some("bytes=-30"), 10), Part(0, 10));
        assert_eq!(parse_range(Some("bytes=8-100"), 10), Part(8, 10));
        assert_eq!(parse_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=5-2"), 10), Full);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), Full);
    }

    #[test]
    fn targets_decode_once_and_validate() {
        assert!(matches!(parse_target("/").unwrap(), Target::Service));
        assert!(matches!(parse_target("/bkt").unwrap(), Target::Bucket(b) if b == "bkt"));
        assert!(matches!(parse_target("/bkt/").unwrap(), Target::Bucket(b) if b == "bkt"));
        match parse_target("/bkt/a%20b/%C3%A9/../x").unwrap() {
            Target::Object(b, k) => assert_eq!((b.as_str(), k.as_str()), ("bkt", "a b/é/../x")),
            _ => panic!("not an object"),
        }
        assert!(matches!(
            parse_target("/BAD"),
            Err(DirectorError::InvalidBucketName(_))
        ));
        assert!(matches!(
            parse_target("/bkt/%FF"),
            Err(DirectorError::InvalidKey(_))
        ));
        assert!(matches!(
            parse_target("/bkt/a%00"),
            Err(DirectorError::InvalidKey(_))
        ));
    }

    #[test]
    fn copy_sources_name_their_bucket() {
        assert_eq!(copy_source_bucket("/photos/a%20b.jpg"), "photos");
        assert_eq!(copy_source_bucket("photos/a.jpg?versionId=null"), "photos");
        assert_eq!(copy_source_bucket("ph%6Ftos/a"), "photos");
        assert_eq!(copy_source_bucket(""), "");
    }

    #[test]
    fn continuation_tokens() {
        let t = crate::hash::to_hex("a/é".as_bytes());
        assert_eq!(decode_token(&t).unwrap(), "a/é");
        assert!(decode_token("zz").is_err());
        assert!(decode_token("a").is_err());
    }
}
