//! The director's HTTP API (path-style S3) as a function from `Request` to `Response`:
//! routing, URL decoding and key validation (in one place), S3 XML bodies and errors.
//! No sockets here (see `crate::http`).

use super::DirectorApi;
use super::acl;
use super::auth::{Access, Principal};
use super::body;
use super::multipart_routes;
use super::object_routes::{
    read_preconditions, refuse_unknown_params, response_overrides, stored_headers, subresource,
    user_meta, write_condition,
};
use super::object_versions::{delete_record, object_to_read, requested_version, with_version_id};
use super::target::{Target, object_headers, parse_target, xml};
use super::target::{owner_elem, owner_id, owner_of};
use crate::director::data::scatter::NewObject;
use crate::director::error::{DirectorError, Result};
use crate::director::meta::acl::Permission;
use crate::director::meta::index::{Index, ListEntry, ListPage, ObjectMeta};
use crate::director::meta::records::Record;
use crate::director::meta::uploads::PART_NUMBER_MAX;
use crate::http::{Body, Request, Response, percent_decode, percent_encode};
use crate::s3::names::CONTENT_TYPE_DEFAULT;
use crate::s3::xml::Doc;
use crate::timefmt::{iso8601, now_ms};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Most keys one listing page returns (S3's limit).
pub const LIST_KEYS_MAX: usize = 1000;
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
    // Unsigned requests learn nothing, not even whether a bucket name is valid; those
    // that name a bucket or an object go on to `authorize_buckets`, where only an ACL
    // can let them through.
    match parse_target(path) {
        Ok(Target::Bucket(_) | Target::Object(..)) => Ok(()),
        Ok(Target::Service) | Err(_) => access.check_signed(),
    }
}

/// The bucket half of `authorize`, once the index is current (after the read barrier):
/// the bucket a request names, and a copy's source bucket, must be the key's to touch,
/// or an ACL must grant what the request asks (`acl::permits`). Ok(true) when only an
/// ACL let the named bucket through (DeleteObjects then refuses each version it names).
fn authorize_buckets(access: &Access, path: &str, req: &Request<'_>, idx: &Index) -> Result<bool> {
    if path.starts_with("/_dpyfs/") || path == "/metrics" {
        return Ok(false);
    }
    let bucket = match parse_target(path) {
        Ok(Target::Bucket(b)) | Ok(Target::Object(b, _)) => b,
        // ListBuckets shows only the key's buckets; a bad name is the router's to refuse.
        Ok(Target::Service) | Err(_) => return Ok(false),
    };
    let owner_key = |b: &str| idx.buckets.get(b).map(|x| x.owner.as_deref());
    let owner = owner_key(&bucket);
    // CreateBucket of an existing bucket is answered by its handler: 200 for one's own,
    // 409 BucketAlreadyExists for another key's (as S3), not 403. (Not to an unsigned
    // request, which must not learn that the bucket exists.)
    let create = req.method == "PUT" && path.trim_end_matches('/') == format!("/{bucket}");
    let signed = access.check_signed().is_ok();
    if create && req.query.is_empty() && owner.is_some() && signed {
        return Ok(false);
    }
    let by_acl = match access.check_bucket(&bucket, owner) {
        Ok(()) => false,
        Err(_) if acl::permits(access, req, idx) => true,
        Err(e) => return Err(e),
    };
    // A copy (CopyObject, UploadPartCopy) reads its source bucket too.
    let Some(src) = req.header("x-amz-copy-source") else {
        return Ok(by_acl);
    };
    let b = copy_source_bucket(src);
    match access.check_bucket(&b, owner_key(&b)) {
        Err(e) if !acl::permits_copy_source(access, src, idx) => Err(e),
        _ => Ok(by_acl),
    }
}

/// The bucket named by `x-amz-copy-source` (`bucket/key` or `/bucket/key`, URL-encoded),
/// for the access check; a malformed header is the copy handler's to refuse.
fn copy_source_bucket(src: &str) -> String {
    let s = src.trim().trim_start_matches('/');
    let b = s.split('/').next().unwrap_or("");
    percent_decode(b, false).unwrap_or_else(|| b.to_string())
}

/// The checks of a GET or HEAD that only an ACL let through (`acl_reader`: the requester).
fn check_acl_read(req: &Request<'_>, acl_reader: Option<&Access>, m: &ObjectMeta) -> Result<()> {
    let Some(reader) = acl_reader else {
        return Ok(());
    };
    // As S3: an unsigned link may not make a public object answer as another type
    // (`response-content-type=text/html` would run a page on the director's origin).
    let anonymous = reader.principal == Principal::Anonymous;
    if anonymous
        && req
            .query_params()
            .iter()
            .any(|(k, _)| k.starts_with("response-"))
    {
        return Err(DirectorError::BadRequest(
            "InvalidRequest",
            "Request specific response headers cannot be used for anonymous GET requests.".into(),
        ));
    }
    // The ACL was checked on the version current then; the key may have been
    // overwritten (or made) since by a private version, which must not be sent.
    reader.check_version_acl(m, Permission::Read, "the object's")
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

/// The parameters of ListObjects (V1) and ListObjectsV2.
struct ListParams {
    v2: bool,
    prefix: String,
    delimiter: String,
    max: usize,
    /// `encoding-type=url`: names in the answer are percent-encoded.
    url_encode: bool,
    /// V1 always names the owner; V2 only when asked (`fetch-owner=true`).
    with_owner: bool,
    token: Option<String>,
    start_after: Option<String>,
    marker: Option<String>,
    /// Where the page starts: V2's decoded token, else its start-after; V1's marker.
    after: Option<String>,
}

impl ListParams {
    fn parse(req: &Request<'_>) -> Result<ListParams> {
        let v2 = req.query_param("list-type").as_deref() == Some("2");
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
        let token = req.query_param("continuation-token");
        let start_after = req.query_param("start-after");
        let marker = req.query_param("marker");
        let after = match (v2, &token) {
            (true, Some(t)) => Some(decode_token(t)?),
            (true, None) => start_after.clone(),
            (false, _) => marker.clone(),
        };
        Ok(ListParams {
            v2,
            prefix: req.query_param("prefix").unwrap_or_default(),
            delimiter: req.query_param("delimiter").unwrap_or_default(),
            max,
            url_encode: req.query_param("encoding-type").as_deref() == Some("url"),
            with_owner: !v2 || req.query_param("fetch-owner").as_deref() == Some("true"),
            token,
            start_after,
            marker,
            after,
        })
    }

    /// A name as the answer carries it.
    fn enc(&self, s: &str) -> String {
        if self.url_encode {
            percent_encode(s, true)
        } else {
            s.to_string()
        }
    }
}

/// The `ListBucketResult` document of one page; `owner` is the canonical id of the
/// bucket's owner, who owns its objects.
fn list_document(bucket: &str, owner: &str, p: &ListParams, page: &ListPage) -> String {
    let mut d = Doc::new("ListBucketResult");
    d.elem("Name", bucket)
        .elem("Prefix", &p.enc(&p.prefix))
        .elem("MaxKeys", &p.max.to_string())
        .elem("IsTruncated", if page.truncated { "true" } else { "false" });
    if !p.delimiter.is_empty() {
        d.elem("Delimiter", &p.enc(&p.delimiter));
    }
    if p.url_encode {
        d.elem("EncodingType", "url");
    }
    if p.v2 {
        d.elem("KeyCount", &page.entries.len().to_string());
        if let Some(t) = &p.token {
            d.elem("ContinuationToken", t);
        }
        if let Some(s) = &p.start_after {
            d.elem("StartAfter", &p.enc(s));
        }
        if let Some(n) = &page.next_after {
            d.elem("NextContinuationToken", &crate::hash::to_hex(n.as_bytes()));
        }
    } else {
        d.elem("Marker", &p.enc(p.marker.as_deref().unwrap_or_default()));
        if let Some(n) = &page.next_after {
            d.elem("NextMarker", &p.enc(n));
        }
    }
    for e in &page.entries {
        match e {
            ListEntry::Object(k, m) => {
                d.open("Contents")
                    .elem("Key", &p.enc(k))
                    .elem("LastModified", &iso8601(m.mtime_ms))
                    .elem("ETag", &format!("\"{}\"", m.etag))
                    .elem("Size", &m.size.to_string());
                if p.with_owner {
                    owner_elem(&mut d, "Owner", owner);
                }
                d.elem("StorageClass", "STANDARD").close("Contents");
            }
            ListEntry::CommonPrefix(prefix) => {
                d.open("CommonPrefixes")
                    .elem("Prefix", &p.enc(prefix))
                    .close("CommonPrefixes");
            }
        }
    }
    d.finish("ListBucketResult")
}

impl DirectorApi {
    pub fn handle(&self, req: &mut Request<'_>) -> Response {
        let rid = format!("{:016x}", self.request_ids.fetch_add(1, Ordering::Relaxed));
        let t0 = Instant::now();
        // Before any routing or body reading: a refused request touches nothing.
        let now = now_ms();
        let (route, result) = match self.auth.verify(req, now) {
            // Form uploads and the upload form page authenticate themselves.
            Ok(mut access) => match self.form_routes(req, &access, now) {
                Some(answer) => answer,
                None => self.route(req, &mut access),
            },
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
        // body_hash_may_be_signed checked that Content-Length is within the limit.
        let body = match super::body::read_small(req, super::auth::SIGNED_BODY_BYTES_MAX, |max| {
            DirectorError::BodyRead(format!("the body is longer than {max} bytes"))
        }) {
            Ok(b) => b,
            Err(e) => return ("auth", Err(e)),
        };
        let hash = crate::sigv4::sha256_hex(&body);
        let mut cursor = std::io::Cursor::new(body);
        let mut buffered = Request {
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            params: req.params.clone(),
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
        // A request dpyfs does not offer is the client's business (a client probing
        // `?versions` is normal), not a fault of the director's: INFO, not ERROR.
        if status == 501 {
            log::info!("{resource}: {e}");
        } else if status >= 500 {
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
        if let DirectorError::DeleteMarker { version, .. } = e {
            r = r
                .with_header("x-amz-delete-marker", "true")
                .with_header("x-amz-version-id", version.clone());
        }
        if code == "ServiceUnavailable" {
            r = r.with_header(
                "Retry-After",
                crate::director::replica::shared::RETRY_AFTER_SECS.to_string(),
            );
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
        if !path.starts_with("/_dpyfs/") {
            // Linearizable on a group of directors (a no-op for a group of one): a read
            // sees, and a write is checked against, everything committed before it began.
            if let Err(e) = self.director.read_barrier() {
                return ("read", Err(e));
            }
        }
        let by_acl = match authorize_buckets(access, &path, req, &self.director.read_index()) {
            Ok(by_acl) => by_acl,
            Err(e) => return ("auth", Err(e)),
        };
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
        if let Some(op) = multipart_routes::op(&method, &target, req) {
            if let Err(e) = refuse_unknown_params(req, op.params()) {
                return ("unsupported", Err(e));
            }
            let chain = access.chain.take();
            return self.multipart(op, target, req, chain, access);
        }
        let sub = match subresource(&method, &target, req) {
            Ok(s) => s,
            Err(e) => return ("unsupported", Err(e)),
        };
        if let Some(sub) = sub {
            return (
                "subresource",
                self.subresource(&method, &target, sub, req, access),
            );
        }
        let chain = access.chain.take();
        let reader = by_acl.then_some(&*access);
        match (method.as_str(), target) {
            ("GET", Target::Service) => ("list_buckets", self.list_buckets(access)),
            ("PUT", Target::Bucket(b)) => ("create_bucket", self.create_bucket(b, req, access)),
            ("DELETE", Target::Bucket(b)) => ("delete_bucket", self.delete_bucket(b)),
            ("HEAD", Target::Bucket(b)) => ("head_bucket", self.head_bucket(&b)),
            ("GET", Target::Bucket(b)) => ("list_objects", self.list_objects(&b, req)),
            ("POST", Target::Bucket(b)) if req.query_param("delete").is_some() => {
                ("delete_objects", self.delete_objects(b, req, by_acl))
            }
            ("PUT", Target::Object(b, k)) if req.header("x-amz-copy-source").is_some() => {
                ("copy_object", self.copy_object(b, k, req, access))
            }
            ("PUT", Target::Object(b, k)) => ("put_object", self.put_object(b, k, req, chain)),
            ("GET", Target::Object(b, k)) => {
                ("get_object", self.get_object(&b, &k, req, true, reader))
            }
            ("HEAD", Target::Object(b, k)) => {
                ("head_object", self.get_object(&b, &k, req, false, reader))
            }
            ("DELETE", Target::Object(b, k)) => ("delete_object", self.delete_object(b, k, req)),
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
        // The requester's canonical id: a key's access key id (`acl.rs`).
        owner_elem(&mut d, "Owner", owner_id(access.key()));
        d.open("Buckets");
        let mine = |(n, b): &(&String, &crate::director::meta::index::Bucket)| {
            access.may_touch(n, b.owner.as_deref())
        };
        for (name, b) in idx.buckets.iter().filter(mine) {
            d.open("Bucket")
                .elem("Name", name)
                .elem("CreationDate", &iso8601(b.created_ms))
                .close("Bucket");
        }
        d.close("Buckets");
        Ok(xml(200, d.finish("ListAllMyBucketsResult")))
    }

    fn create_bucket(
        &self,
        bucket: String,
        req: &Request<'_>,
        access: &Access,
    ) -> Result<Response> {
        let location = format!("/{bucket}");
        let known = |id: &str| self.auth.knows(id);
        let acl = acl::from_headers(req, owner_id(access.key()), &known)?.unwrap_or_default();
        let created = self.director.commit(&Record::BucketCreate {
            bucket: bucket.clone(),
            created: now_ms(),
            owner: access.key().map(str::to_string),
            acl: acl.to_record(),
        });
        match created {
            // S3's rule in us-east-1, the region dpyfs answers as: creating a bucket one
            // already has succeeds and changes nothing (elsewhere S3 answers 409). Another
            // key's bucket (created meanwhile) is 409 BucketAlreadyExists.
            Err(e) if e.status_and_code().1 == "BucketAlreadyOwnedByYou" => {
                let owner = self.director.read_index().bucket(&bucket)?.owner.clone();
                if !access.may_touch(&bucket, owner.as_deref()) {
                    return Err(DirectorError::S3(
                        409,
                        "BucketAlreadyExists",
                        format!("the bucket '{bucket}' exists and belongs to another key"),
                    ));
                }
            }
            Err(e) => return Err(e),
            Ok(_) => {}
        }
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
        let p = ListParams::parse(req)?;
        let idx = self.director.read_index();
        let page = idx.list(
            bucket,
            &p.prefix,
            &p.delimiter,
            p.after.as_deref().filter(|a| !a.is_empty()),
            p.max,
        )?;
        let owner = owner_of(&idx, bucket)?;
        drop(idx);
        Ok(xml(200, list_document(bucket, &owner, &p, &page)))
    }

    fn put_object(
        &self,
        bucket: String,
        key: String,
        req: &mut Request<'_>,
        chain: Option<Box<dyn body::SignatureChain>>,
    ) -> Result<Response> {
        let acl = self.request_acl(req, &bucket)?;
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
            parts: Vec::new(),
            acl,
        };
        // A signed streaming body's chunk signatures are checked through `chain`.
        let mut body = body::open(req, chain)?;
        let bucket = new.bucket.clone();
        let m = self.director.put_object(new, &mut body)?;
        let mut r = Response::empty(200).with_header("ETag", format!("\"{}\"", m.etag));
        r = with_version_id(r, self.versioning_of(&bucket), &m);
        if let Some((alg, value)) = &m.checksum {
            r = r.with_header(&format!("x-amz-checksum-{alg}"), value.clone());
        }
        Ok(r)
    }

    /// GetObject and HeadObject. `acl_reader`: the requester, when only an ACL let the
    /// request through (`authorize_buckets`).
    fn get_object(
        &self,
        bucket: &str,
        key: &str,
        req: &Request<'_>,
        with_body: bool,
        acl_reader: Option<&Access>,
    ) -> Result<Response> {
        let version = requested_version(req)?;
        let (m, versioning) = {
            let idx = self.director.read_index();
            let m = object_to_read(&idx, bucket, key, version.as_ref().map(Option::as_deref))?;
            (m, idx.bucket(bucket)?.versioning)
        };
        check_acl_read(req, acl_reader, &m)?;
        if let Some(r) = read_preconditions(req, &m)? {
            return Ok(r);
        }
        let part = requested_part(req, &m)?;
        let (status, start, end) = match (&part, parse_range(req.header("range"), m.size)) {
            (Some(p), _) => (p.status, p.start, p.end),
            (None, RangeSpec::Full) => (200, 0, m.size),
            (None, RangeSpec::Part(a, b)) => (206, a, b),
            (None, RangeSpec::Unsatisfiable) => {
                return Err(DirectorError::InvalidRange { size: m.size });
            }
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
        r = with_version_id(r, versioning, &m);
        // As S3: the stored checksum only when asked for, and only for the whole object.
        let asked = req
            .header("x-amz-checksum-mode")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("ENABLED"));
        let whole = status == 200 && part.as_ref().is_none_or(|p| p.count.is_none());
        if let (true, true, Some((alg, value))) = (asked, whole, &m.checksum) {
            r = r.with_header(&format!("x-amz-checksum-{alg}"), value.clone());
            if value.contains('-') {
                r = r.with_header("x-amz-checksum-type", "COMPOSITE");
            }
        }
        if let Some(p) = &part {
            // A part's own checksum, which the client can verify against its bytes.
            if let (true, Some((alg, _)), Some(sum)) = (asked, &m.checksum, &p.checksum) {
                r = r.with_header(&format!("x-amz-checksum-{alg}"), sum.clone());
            }
            if let Some(n) = p.count {
                r = r.with_header("x-amz-mp-parts-count", n.to_string());
            }
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

    /// DeleteObject: the object, a delete marker, or one version (`?versionId=`).
    fn delete_object(&self, bucket: String, key: String, req: &Request<'_>) -> Result<Response> {
        let version = requested_version(req)?;
        let (record, answer) = delete_record(&self.director.read_index(), &bucket, &key, version)?;
        // Deleting a missing key succeeds, as in S3; a missing bucket does not.
        if let Some(rec) = record {
            self.director.commit(&rec)?;
        }
        Ok(answer.headers(Response::empty(204)))
    }
}

/// What `?partNumber=N` asks of an object: the bytes of part N, its checksum, and the
/// object's part count (None for a single-part object, whose only part is all of it).
struct RequestedPart {
    status: u16,
    start: u64,
    end: u64,
    count: Option<usize>,
    checksum: Option<String>,
}

/// `?partNumber=N` on GET or HEAD, as S3: N from 1 to 10000; with a `Range` too, 400; a
/// multipart object answers part N as a 206 with `x-amz-mp-parts-count`; a single-part
/// object has only part 1, the whole object (200); a part beyond the last is 416
/// `InvalidPartNumber`. Objects completed before part boundaries were kept cannot say.
fn requested_part(req: &Request<'_>, m: &ObjectMeta) -> Result<Option<RequestedPart>> {
    let Some(n) = req.query_param("partNumber") else {
        return Ok(None);
    };
    let n: usize = n
        .parse()
        .ok()
        .filter(|n| (1..=PART_NUMBER_MAX as usize).contains(n))
        .ok_or_else(|| {
            DirectorError::BadRequest(
                "InvalidArgument",
                format!("partNumber {n:?}: it must be an integer between 1 and {PART_NUMBER_MAX}"),
            )
        })?;
    if req.header("range").is_some() {
        return Err(DirectorError::BadRequest(
            "InvalidRequest",
            "a Range header and the partNumber parameter cannot be used together".into(),
        ));
    }
    let beyond = || {
        DirectorError::S3(
            416,
            "InvalidPartNumber",
            format!("the object has no part {n}"),
        )
    };
    if m.parts.is_empty() {
        if m.upload_id.is_some() || m.etag.contains('-') {
            return Err(DirectorError::NotImplemented(
                "partNumber on a multipart object completed before dpyfs kept part boundaries"
                    .into(),
            ));
        }
        return match n {
            1 => Ok(Some(RequestedPart {
                status: 200,
                start: 0,
                end: m.size,
                count: None,
                checksum: None,
            })),
            _ => Err(beyond()),
        };
    }
    let part = m.parts.get(n - 1).ok_or_else(beyond)?;
    let start: u64 = m.parts[..n - 1].iter().map(|p| p.size).sum();
    Ok(Some(RequestedPart {
        status: 206,
        start,
        end: start + part.size,
        count: Some(m.parts.len()),
        checksum: part.checksum.clone(),
    }))
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
