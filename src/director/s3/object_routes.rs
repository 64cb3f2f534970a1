//! The S3 object operations beyond plain PUT/GET/DELETE: CopyObject, DeleteObjects,
//! conditional requests, stored headers and `response-*` overrides, and the bucket and
//! object sub-resources clients probe (`?versioning`, `?policy`...), each answered as
//! honestly as dpyfs can: an empty document, S3's own "not configured" 404, or 501
//! NotImplemented when the client asks to change something dpyfs does not have. `?acl`
//! is acl.rs's.

use super::DirectorApi;
use super::auth::Access;
use super::object_versions::{
    Deleted, copy_source_object, delete_record, requested_version, with_version_id,
};
use super::target::{Target, xml};
use crate::director::data::scatter::{Contents, NewObject, WriteCondition, precondition_failed};
use crate::director::error::{DirectorError, Result};
use crate::director::meta::index::{ObjectMeta, STORED_HEADERS, valid_bucket_name, validate_key};
use crate::director::meta::versions::parse_version_id;
use crate::http::{Request, Response, percent_decode};
use crate::s3::xml::{self as x, Doc};
use crate::timefmt::{iso8601, parse_http_date};
use std::collections::BTreeMap;

/// Most keys one DeleteObjects request may name (S3's limit).
pub const DELETE_KEYS_MAX: usize = 1000;
/// Largest XML request body read (DeleteObjects of 1000 keys of 1024 bytes fits).
const XML_BODY_BYTES_MAX: u64 = 2 * 1024 * 1024;

/// Query parameters a ListObjects request understands.
const LIST_PARAMS: &[&str] = &[
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "marker",
    "start-after",
    "continuation-token",
    "encoding-type",
    "fetch-owner",
];
/// `response-*` overrides of a GET, and the header each sets.
const RESPONSE_OVERRIDES: &[(&str, &str)] = &[
    ("response-cache-control", "Cache-Control"),
    ("response-content-disposition", "Content-Disposition"),
    ("response-content-encoding", "Content-Encoding"),
    ("response-content-language", "Content-Language"),
    ("response-content-type", "Content-Type"),
    ("response-expires", "Expires"),
];

/// Sub-resources: a query parameter that names another operation on the same path.
/// Those answered are in `DirectorApi::subresource`; the rest get 501.
const SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "policy",
    "policyStatus",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versioning",
    "versions",
    "website",
];

/// The sub-resource that answers a request naming several (`?versioning&acl`): the
/// first in its query. `acl::needs` judges a request by this same one, so a grant for one
/// sub-resource never opens another that the same request names.
pub(super) fn first_subresource(req: &Request<'_>) -> Option<&'static str> {
    req.query_params()
        .iter()
        .find_map(|(k, _)| SUBRESOURCES.iter().find(|s| **s == k.as_str()).copied())
}

/// Finds the sub-resource a request names, if any, and refuses parameters the plain
/// operation does not understand: answering, say, `?tagging` as a plain PUT would
/// overwrite the object. Returns the sub-resource's name.
pub(super) fn subresource(
    method: &str,
    target: &Target,
    req: &Request<'_>,
) -> Result<Option<&'static str>> {
    if let Some(s) = first_subresource(req) {
        return Ok(Some(s));
    }
    let allowed: Vec<&str> = match (method, target) {
        ("GET", Target::Bucket(_)) => LIST_PARAMS.to_vec(),
        ("POST", Target::Bucket(_)) => vec!["delete"],
        ("GET", Target::Object(..)) => RESPONSE_OVERRIDES
            .iter()
            .map(|(param, _)| *param)
            .chain(["versionId", "partNumber"])
            .collect(),
        ("HEAD", Target::Object(..)) => vec!["versionId", "partNumber"],
        ("DELETE", Target::Object(..)) => vec!["versionId"],
        _ => Vec::new(),
    };
    refuse_unknown_params(req, &allowed)?;
    // A version id of a shape no version has is 400 before anything is looked up.
    requested_version(req)?;
    Ok(None)
}

/// The query parameters of a Signature Version 2 presigned URL (checked by auth).
const V2_PRESIGN_PARAMS: &[&str] = &["AWSAccessKeyId", "Expires", "Signature"];

/// Refuses (501) any query parameter not in `allowed`: it names an operation this
/// director does not implement. `x-id` names the operation for newer SDKs; `X-Amz-*` and
/// `V2_PRESIGN_PARAMS` carry a presigned request's signature (checked by auth); none of
/// them changes what is asked.
pub(super) fn refuse_unknown_params(req: &Request<'_>, allowed: &[&str]) -> Result<()> {
    for (k, _) in req.query_params() {
        if k == "x-id"
            || k.starts_with("X-Amz-")
            || V2_PRESIGN_PARAMS.contains(&k.as_str())
            || allowed.contains(&k.as_str())
        {
            continue;
        }
        return Err(DirectorError::NotImplemented(format!(
            "the ?{k} sub-resource"
        )));
    }
    Ok(())
}

/// `x-amz-meta-*` headers, names lowercase without the prefix.
pub fn user_meta(req: &Request<'_>) -> BTreeMap<String, String> {
    req.headers
        .iter()
        .filter_map(|(k, v)| Some((k.strip_prefix("x-amz-meta-")?.to_string(), v.clone())))
        .collect()
}

/// The standard headers an upload sets that are stored with the object.
pub fn stored_headers(req: &Request<'_>) -> BTreeMap<String, String> {
    STORED_HEADERS
        .iter()
        .filter_map(|h| {
            let v = req.header(h)?;
            // aws-chunked is the request's framing, not the object's encoding.
            let v = if *h == "content-encoding" {
                super::body::stored_content_encoding(v)?
            } else {
                v.to_string()
            };
            Some((h.to_string(), v))
        })
        .collect()
}

/// ETags in an If-Match / If-None-Match header, unquoted (`*` kept as is).
fn etag_list(h: &str) -> Vec<String> {
    h.split(',')
        .map(|t| {
            let t = t.trim();
            let t = t.strip_prefix("W/").unwrap_or(t);
            t.trim_matches('"').to_string()
        })
        .filter(|t| !t.is_empty())
        .collect()
}

/// The condition a PUT carries: `If-None-Match: *` (create only) or `If-Match`.
pub fn write_condition(req: &Request<'_>) -> Result<WriteCondition> {
    match (req.header("if-none-match"), req.header("if-match")) {
        (Some(_), Some(_)) => Err(DirectorError::NotImplemented(
            "If-Match together with If-None-Match on a write".into(),
        )),
        (Some(h), None) if h.trim() == "*" => Ok(WriteCondition::Absent),
        (Some(_), None) => Err(DirectorError::NotImplemented(
            "If-None-Match on a write with anything but '*'".into(),
        )),
        (None, Some(h)) => Ok(WriteCondition::EtagIs(etag_list(h))),
        (None, None) => Ok(WriteCondition::Any),
    }
}

/// How an object's version compares with one request's conditions.
struct Conditions<'a> {
    if_match: Option<&'a str>,
    if_none_match: Option<&'a str>,
    if_modified_since: Option<&'a str>,
    if_unmodified_since: Option<&'a str>,
}

enum Verdict {
    Proceed,
    NotModified,
    Failed(&'static str),
}

impl Conditions<'_> {
    /// RFC 9110 section 13.2.2's order, which is also S3's: If-Match, else
    /// If-Unmodified-Since; then If-None-Match, else If-Modified-Since. Dates compare at
    /// whole seconds (Last-Modified has no finer precision); unparseable dates are ignored.
    fn evaluate(&self, m: &ObjectMeta) -> Verdict {
        let secs = m.mtime_ms / 1000;
        let date = |h: Option<&str>| h.and_then(parse_http_date).map(|ms| ms / 1000);
        let matches = |h: &str| etag_list(h).iter().any(|t| t == "*" || *t == m.etag);
        if let Some(h) = self.if_match {
            if !matches(h) {
                return Verdict::Failed("If-Match");
            }
        } else if let Some(d) = date(self.if_unmodified_since) {
            if secs > d {
                return Verdict::Failed("If-Unmodified-Since");
            }
        }
        if let Some(h) = self.if_none_match {
            if matches(h) {
                return Verdict::NotModified;
            }
        } else if let Some(d) = date(self.if_modified_since) {
            if secs <= d {
                return Verdict::NotModified;
            }
        }
        Verdict::Proceed
    }
}

/// GET/HEAD conditions: `Some(304 response)`, an error 412, or None to go on.
pub fn read_preconditions(req: &Request<'_>, m: &ObjectMeta) -> Result<Option<Response>> {
    let c = Conditions {
        if_match: req.header("if-match"),
        if_none_match: req.header("if-none-match"),
        if_modified_since: req.header("if-modified-since"),
        if_unmodified_since: req.header("if-unmodified-since"),
    };
    match c.evaluate(m) {
        Verdict::Proceed => Ok(None),
        Verdict::NotModified => Ok(Some(
            Response::empty(304)
                .with_header("ETag", format!("\"{}\"", m.etag))
                .with_header("Last-Modified", crate::timefmt::http_date(m.mtime_ms)),
        )),
        Verdict::Failed(which) => Err(precondition_failed(which)),
    }
}

/// Applies `response-*` query overrides of a GET.
pub fn response_overrides(mut r: Response, req: &Request<'_>) -> Result<Response> {
    for (param, header) in RESPONSE_OVERRIDES {
        if let Some(v) = req.query_param(param) {
            if v.contains(['\r', '\n']) {
                return Err(DirectorError::BadRequest(
                    "InvalidArgument",
                    format!("{param} may not hold a line break"),
                ));
            }
            r = r.set_header(header, v);
        }
    }
    Ok(r)
}

/// The `x-amz-copy-source-if-*` conditions of CopyObject and UploadPartCopy against the
/// source: any that does not hold is 412 PreconditionFailed (never 304).
pub(super) fn check_copy_source_conditions(req: &Request<'_>, src: &ObjectMeta) -> Result<()> {
    let cond = Conditions {
        if_match: req.header("x-amz-copy-source-if-match"),
        if_none_match: req.header("x-amz-copy-source-if-none-match"),
        if_modified_since: req.header("x-amz-copy-source-if-modified-since"),
        if_unmodified_since: req.header("x-amz-copy-source-if-unmodified-since"),
    };
    match cond.evaluate(src) {
        Verdict::Proceed => Ok(()),
        Verdict::NotModified => Err(precondition_failed(
            "x-amz-copy-source-if-none-match / if-modified-since",
        )),
        Verdict::Failed(w) => Err(precondition_failed(w)),
    }
}

/// `x-amz-metadata-directive`: true for REPLACE (the request's metadata), false for COPY
/// (the source's, the default).
fn metadata_replaced(req: &Request<'_>) -> Result<bool> {
    match req
        .header("x-amz-metadata-directive")
        .unwrap_or("COPY")
        .trim()
    {
        "COPY" => Ok(false),
        "REPLACE" => Ok(true),
        other => Err(DirectorError::BadRequest(
            "InvalidArgument",
            format!("x-amz-metadata-directive {other:?}: use COPY or REPLACE"),
        )),
    }
}

pub(super) fn read_small_body(req: &mut Request<'_>) -> Result<String> {
    let body = super::body::read_small(req, XML_BODY_BYTES_MAX, |max| {
        DirectorError::BadRequest(
            "MaxMessageLengthExceeded",
            format!("the XML body is larger than {max} bytes"),
        )
    })?;
    String::from_utf8(body).map_err(|e| DirectorError::BodyRead(format!("not UTF-8: {e}")))
}

pub(super) fn parse_xml(text: &str) -> Result<x::Element> {
    x::parse(text).map_err(|e| {
        DirectorError::BadRequest("MalformedXML", format!("the XML body is malformed: {e}"))
    })
}

/// Where a copy reads from: bucket, key, and the version named (None: the current one;
/// `Some(None)`: the `null` version).
pub(super) type CopySource = (String, String, Option<Option<String>>);

/// `x-amz-copy-source`: `bucket/key` or `/bucket/key`, URL-encoded, maybe `?versionId=`.
pub(super) fn parse_copy_source(h: &str) -> Result<CopySource> {
    let bad = |why: &str| {
        DirectorError::BadRequest("InvalidArgument", format!("x-amz-copy-source {h:?}: {why}"))
    };
    let (path, version) = match h.split_once('?') {
        Some((p, q)) => (p, q.strip_prefix("versionId=")),
        None => (h, None),
    };
    if h.contains('?') && version.is_none() {
        return Err(bad("only ?versionId= may follow the key"));
    }
    let version = version
        .map(crate::director::meta::versions::parse_version_id)
        .transpose()?;
    let p = path.strip_prefix('/').unwrap_or(path);
    let (b, k) = p
        .split_once('/')
        .ok_or_else(|| bad("give it as bucket/key"))?;
    let bucket = percent_decode(b, false).ok_or_else(|| bad("bad encoding"))?;
    let key = percent_decode(k, false).ok_or_else(|| bad("bad encoding"))?;
    if !valid_bucket_name(&bucket) {
        return Err(DirectorError::InvalidBucketName(bucket));
    }
    if key.is_empty() {
        return Err(bad("the key is empty"));
    }
    validate_key(&key)?;
    Ok((bucket, key, version))
}

/// Bucket settings whose GET answers an empty or default document, as S3 does for a
/// bucket where nothing was set: (sub-resource, root element). `location` is empty for
/// the default region, as S3 answers for us-east-1.
const BUCKET_SETTINGS_DEFAULT: &[(&str, &str)] = &[
    ("location", "LocationConstraint"),
    ("versioning", "VersioningConfiguration"),
    ("logging", "BucketLoggingStatus"),
    ("accelerate", "AccelerateConfiguration"),
    ("notification", "NotificationConfiguration"),
];

/// Bucket settings dpyfs does not offer, which S3 reports as absent with a code of their
/// own: (sub-resource, code, what it is, whether DELETE succeeds). Removing a
/// configuration that does not exist succeeds, as in S3.
const BUCKET_SETTINGS_ABSENT: &[(&str, &str, &str, bool)] = &[
    ("policy", "NoSuchBucketPolicy", "bucket policy", true),
    ("policyStatus", "NoSuchBucketPolicy", "bucket policy", false),
    (
        "cors",
        "NoSuchCORSConfiguration",
        "CORS configuration",
        true,
    ),
    (
        "lifecycle",
        "NoSuchLifecycleConfiguration",
        "lifecycle configuration",
        true,
    ),
    ("tagging", "NoSuchTagSet", "tags", true),
    (
        "encryption",
        "ServerSideEncryptionConfigurationNotFoundError",
        "server-side encryption configuration",
        true,
    ),
    (
        "website",
        "NoSuchWebsiteConfiguration",
        "website configuration",
        true,
    ),
    (
        "object-lock",
        "ObjectLockConfigurationNotFoundError",
        "object lock configuration",
        false,
    ),
    (
        "replication",
        "ReplicationConfigurationNotFoundError",
        "replication configuration",
        true,
    ),
    (
        "ownershipControls",
        "OwnershipControlsNotFoundError",
        "ownership controls",
        true,
    ),
    (
        "publicAccessBlock",
        "NoSuchPublicAccessBlockConfiguration",
        "public access block",
        true,
    ),
];

/// GET of a bucket setting: a default document, S3's "not configured" error, or 501.
fn bucket_setting(sub: &str) -> Result<Response> {
    if let Some((_, root)) = BUCKET_SETTINGS_DEFAULT.iter().find(|(s, _)| *s == sub) {
        return Ok(xml(200, Doc::new(root).finish(root)));
    }
    if sub == "requestPayment" {
        let mut d = Doc::new("RequestPaymentConfiguration");
        d.elem("Payer", "BucketOwner");
        return Ok(xml(200, d.finish("RequestPaymentConfiguration")));
    }
    match BUCKET_SETTINGS_ABSENT.iter().find(|(s, ..)| *s == sub) {
        Some((_, code, what, _)) => Err(DirectorError::S3(
            404,
            code,
            format!("the bucket has no {what} (dpyfs does not offer it)"),
        )),
        None => Err(DirectorError::NotImplemented(format!(
            "GET on the bucket's ?{sub} sub-resource"
        ))),
    }
}

/// DELETE of a bucket setting: there is none to remove, which succeeds.
fn remove_bucket_setting(sub: &str) -> Result<Response> {
    if BUCKET_SETTINGS_ABSENT
        .iter()
        .any(|(s, _, _, deletable)| *s == sub && *deletable)
    {
        return Ok(Response::empty(204));
    }
    Err(DirectorError::NotImplemented(format!(
        "DELETE on the bucket's ?{sub} sub-resource"
    )))
}

/// What CopyObject refuses before it looks at the source: a range (UploadPartCopy's),
/// tags, and a copy of the current version onto itself
/// without new metadata (copying an older version onto its key is how a version is
/// restored). Returns whether the metadata is replaced.
fn check_copy_request(req: &Request<'_>, onto_itself: bool) -> Result<bool> {
    if req.header("x-amz-copy-source-range").is_some() {
        return Err(DirectorError::BadRequest(
            "InvalidArgument",
            "x-amz-copy-source-range belongs to UploadPartCopy, not CopyObject".into(),
        ));
    }
    let replace = metadata_replaced(req)?;
    if req.header("x-amz-tagging-directive") == Some("REPLACE") {
        return Err(DirectorError::NotImplemented("object tags".into()));
    }
    if onto_itself && !replace {
        return Err(DirectorError::BadRequest(
            "InvalidRequest",
            "this copy request is illegal because it is trying to copy an object to itself \
             without changing the object's metadata (use x-amz-metadata-directive: REPLACE)"
                .into(),
        ));
    }
    Ok(replace)
}

impl DirectorApi {
    /// A request that names a sub-resource (see `SUBRESOURCES`).
    pub(super) fn subresource(
        &self,
        method: &str,
        target: &Target,
        sub: &str,
        req: &mut Request<'_>,
        access: &Access,
    ) -> Result<Response> {
        match target {
            Target::Bucket(b) => self.bucket_subresource(method, b, sub, req),
            Target::Object(b, k) => self.object_subresource(method, b, k, sub, req, access),
            Target::Service => Err(DirectorError::NotImplemented(format!(
                "{method} on the object's ?{sub} sub-resource"
            ))),
        }
    }

    /// An object's sub-resources: its ACL (acl.rs), an empty tag set.
    fn object_subresource(
        &self,
        method: &str,
        bucket: &str,
        key: &str,
        sub: &str,
        req: &mut Request<'_>,
        access: &Access,
    ) -> Result<Response> {
        match (method, sub) {
            ("GET" | "PUT", "acl") => self.object_acl(method, bucket, key, req, access),
            // dpyfs keeps no tags: every version's tag set is empty.
            ("GET" | "DELETE", "tagging") => {
                let m = self.requested_object(bucket, key, req)?;
                let r = if method == "GET" {
                    let mut d = Doc::new("Tagging");
                    d.open("TagSet").close("TagSet");
                    xml(200, d.finish("Tagging"))
                } else {
                    Response::empty(204)
                };
                Ok(with_version_id(r, self.versioning_of(bucket), &m))
            }
            ("GET", "attributes") => self.object_attributes(bucket, key, req),
            _ => Err(DirectorError::NotImplemented(format!(
                "{method} on the object's ?{sub} sub-resource"
            ))),
        }
    }

    /// A bucket's sub-resources: its ACL, and the settings dpyfs does not offer, read
    /// as absent or default (`bucket_setting`) and removed without complaint.
    fn bucket_subresource(
        &self,
        method: &str,
        bucket: &str,
        sub: &str,
        req: &mut Request<'_>,
    ) -> Result<Response> {
        let exists = || self.director.read_index().bucket(bucket).map(|_| ());
        match (method, sub) {
            (_, "versioning") => self.versioning(method, bucket, req),
            ("GET", "versions") => self.list_object_versions(bucket, req),
            (_, "lifecycle") => self.lifecycle(method, bucket, req),
            ("GET" | "PUT", "acl") => self.bucket_acl(method, bucket, req),
            ("GET", _) => {
                exists()?;
                bucket_setting(sub)
            }
            ("DELETE", _) => {
                exists()?;
                remove_bucket_setting(sub)
            }
            _ => Err(DirectorError::NotImplemented(format!(
                "{method} on the bucket's ?{sub} sub-resource (dpyfs offers no policies, \
                 CORS, tagging, encryption or website settings)"
            ))),
        }
    }

    /// CopyObject: a new version of `bucket/key` made from an existing object's chunk
    /// list. No data moves; only a new manifest chunk is written.
    pub(super) fn copy_object(
        &self,
        bucket: String,
        key: String,
        req: &mut Request<'_>,
        access: &Access,
    ) -> Result<Response> {
        let src_header = req.header("x-amz-copy-source").unwrap_or_default();
        let (sb, sk, sv) = parse_copy_source(src_header)?;
        let onto_itself = sb == bucket && sk == key && sv.is_none();
        let replace = check_copy_request(req, onto_itself)?;
        let acl = self.request_acl(req, &bucket)?;
        let mut pins = self.director.pins();
        // Read the source and pin its chunks under one index lock: once pinned, garbage
        // collection keeps them even if the source is deleted before the copy commits.
        let src = {
            let idx = self.director.read_index();
            idx.bucket(&bucket)?;
            let sv = sv.as_ref().map(Option::as_deref);
            let src = copy_source_object(&idx, &sb, &sk, sv, access)?;
            for c in &src.chunks {
                pins.pin(c.hash);
            }
            // An inline source's bytes are in its manifest, read below.
            pins.pin(src.manifest);
            src
        };
        check_copy_source_conditions(req, &src)?;
        let (content_type, meta, headers) = if replace {
            let ct = req
                .header("content-type")
                .unwrap_or(crate::s3::names::CONTENT_TYPE_DEFAULT);
            (ct.to_string(), user_meta(req), stored_headers(req))
        } else {
            let s = &src;
            (s.content_type.clone(), s.meta.clone(), s.headers.clone())
        };
        let m_bucket = bucket.clone();
        let new = NewObject {
            bucket,
            key,
            content_type,
            meta,
            headers,
            condition: write_condition(req)?,
            // The bytes are the source's, so are their checksum and part boundaries.
            checksum: src.checksum.clone(),
            parts: src.parts.clone(),
            acl,
        };
        self.director.check_live_stores()?;
        // An inline object is copied as one: its bytes go into the new manifest.
        let contents = if src.inline {
            Contents::Inline(self.director.read_inline(&src)?)
        } else {
            Contents::Chunks(src.chunks.clone())
        };
        let m = self
            .director
            .store_object(new, contents, src.etag.clone(), &mut pins)?;
        let mut d = Doc::new("CopyObjectResult");
        d.elem("LastModified", &iso8601(m.mtime_ms))
            .elem("ETag", &format!("\"{}\"", m.etag));
        let mut r = xml(200, d.finish("CopyObjectResult"));
        if sv.is_some() || src.version.is_some() {
            let id = src.version.clone().unwrap_or_else(|| "null".into());
            r = r.with_header("x-amz-copy-source-version-id", id);
        }
        Ok(with_version_id(r, self.versioning_of(&m_bucket), &m))
    }

    /// DeleteObjects (`POST /bucket?delete`): up to 1000 keys, each deleted on its own,
    /// one fsync for all. `by_acl`: the request was let through by a WRITE grant, not ownership; each
    /// `<VersionId>` is then refused (AccessDenied), as DELETE `?versionId=` is.
    pub(super) fn delete_objects(
        &self,
        bucket: String,
        req: &mut Request<'_>,
        by_acl: bool,
    ) -> Result<Response> {
        self.director.read_index().bucket(&bucket)?;
        let (quiet, keys) = delete_request(req)?;
        // Each key's outcome: an error, or what was deleted and whether a record does it.
        let mut outcome: Vec<Result<(bool, Deleted)>> = Vec::with_capacity(keys.len());
        let mut records = Vec::new();
        {
            let idx = self.director.read_index();
            for (k, v) in &keys {
                // Removing a version for good is the bucket owner's (acl::needs).
                let planned = validate_key(k)
                    .and_then(|()| match (by_acl, v) {
                        (true, Some(_)) => Err(DirectorError::S3(
                            403,
                            "AccessDenied",
                            "a WRITE grant deletes objects, not versions: that is the bucket owner's".into(),
                        )),
                        _ => Ok(()),
                    })
                    .and_then(|()| v.as_deref().map(parse_version_id).transpose())
                    .and_then(|version| delete_record(&idx, &bucket, k, version));
                outcome.push(planned.map(|(rec, answer)| {
                    let has = rec.is_some();
                    records.extend(rec);
                    (has, answer)
                }));
            }
        }
        let mut committed = self.director.commit_many(&records).into_iter();
        let mut d = Doc::new("DeleteResult");
        for ((k, v), planned) in keys.iter().zip(outcome) {
            let done = planned.and_then(|(has, answer)| match has {
                true => committed
                    .next()
                    .unwrap_or_else(|| Err(DirectorError::Internal("a delete went missing".into())))
                    .map(|_| answer),
                false => Ok(answer),
            });
            match done {
                Ok(_) if quiet => {}
                Ok(answer) => {
                    d.open("Deleted").elem("Key", k);
                    if let Some(v) = v {
                        d.elem("VersionId", v);
                    }
                    if answer.marker {
                        d.elem("DeleteMarker", "true");
                    }
                    if let (true, None, Some(id)) = (answer.marker, v, &answer.version) {
                        d.elem("DeleteMarkerVersionId", id);
                    }
                    d.close("Deleted");
                }
                Err(e) => {
                    let (_, code) = e.status_and_code();
                    d.open("Error")
                        .elem("Key", k)
                        .elem("Code", code)
                        .elem("Message", &e.to_string())
                        .close("Error");
                }
            }
        }
        Ok(xml(200, d.finish("DeleteResult")))
    }
}

/// The keys a DeleteObjects request names, each with its version id if it names one.
type DeleteKeys = Vec<(String, Option<String>)>;

/// A DeleteObjects request's `<Delete>` document: Quiet, and the keys.
fn delete_request(req: &mut Request<'_>) -> Result<(bool, DeleteKeys)> {
    let text = read_small_body(req)?;
    let doc = parse_xml(&text)?;
    if doc.name != "Delete" {
        return Err(DirectorError::BadRequest(
            "MalformedXML",
            format!("expected a <Delete> document, got <{}>", doc.name),
        ));
    }
    let quiet = doc.child_text("Quiet") == Some("true");
    let objects: Vec<&x::Element> = doc.all("Object").collect();
    if objects.is_empty() || objects.len() > DELETE_KEYS_MAX {
        return Err(DirectorError::BadRequest(
            "MalformedXML",
            format!(
                "a Delete document names 1 to {DELETE_KEYS_MAX} objects, not {}",
                objects.len()
            ),
        ));
    }
    Ok((quiet, delete_keys(&objects)?))
}

/// The (key, version id) pairs of a Delete document's `<Object>`s, keys as sent (not
/// trimmed: a key may end in a space).
fn delete_keys(objects: &[&x::Element]) -> Result<DeleteKeys> {
    let mut keys = Vec::with_capacity(objects.len());
    for o in objects {
        let key = o.child("Key").map(|k| k.text.clone()).ok_or_else(|| {
            DirectorError::BadRequest("MalformedXML", "an <Object> without <Key>".into())
        })?;
        let version = o.child_text("VersionId").filter(|v| !v.is_empty());
        keys.push((key, version.map(str::to_string)));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(etag: &str, mtime_ms: u64) -> ObjectMeta {
        ObjectMeta {
            acl: Default::default(),
            size: 0,
            mtime_ms,
            etag: etag.into(),
            content_type: String::new(),
            meta: BTreeMap::new(),
            headers: BTreeMap::new(),
            chunks: vec![],
            manifest: crate::hash::Hash::of(b""),
            inline: false,
            checksum: None,
            version: None,
            upload_id: None,
            parts: Vec::new(),
        }
    }

    fn verdict(c: Conditions<'_>, m: &ObjectMeta) -> &'static str {
        match c.evaluate(m) {
            Verdict::Proceed => "go",
            Verdict::NotModified => "304",
            Verdict::Failed(_) => "412",
        }
    }

    #[test]
    fn conditions_follow_rfc_order() {
        // Thu, 26 Nov 2026 10:00:00 GMT
        let m = meta("abc", 1_795_687_200_000);
        let before = "Thu, 26 Nov 2026 09:00:00 GMT";
        let same = "Thu, 26 Nov 2026 10:00:00 GMT";
        let none = Conditions {
            if_match: None,
            if_none_match: None,
            if_modified_since: None,
            if_unmodified_since: None,
        };
        let c = |im, inm, ims, ius| Conditions {
            if_match: im,
            if_none_match: inm,
            if_modified_since: ims,
            if_unmodified_since: ius,
        };
        assert_eq!(verdict(none, &m), "go");
        assert_eq!(verdict(c(Some("\"abc\""), None, None, None), &m), "go");
        assert_eq!(
            verdict(c(Some("\"x\", \"abc\""), None, None, None), &m),
            "go"
        );
        assert_eq!(verdict(c(Some("\"x\""), None, None, None), &m), "412");
        assert_eq!(verdict(c(Some("*"), None, None, None), &m), "go");
        assert_eq!(verdict(c(None, Some("\"abc\""), None, None), &m), "304");
        assert_eq!(verdict(c(None, Some("\"x\""), None, None), &m), "go");
        assert_eq!(verdict(c(None, None, Some(same), None), &m), "304");
        assert_eq!(verdict(c(None, None, Some(before), None), &m), "go");
        assert_eq!(verdict(c(None, None, None, Some(before)), &m), "412");
        assert_eq!(verdict(c(None, None, None, Some(same)), &m), "go");
        // If-Match true wins over a failing If-Unmodified-Since (S3 and RFC 9110).
        assert_eq!(verdict(c(Some("abc"), None, None, Some(before)), &m), "go");
        // If-None-Match false (differs) wins over If-Modified-Since.
        assert_eq!(verdict(c(None, Some("x"), Some(same), None), &m), "go");
        // Unparseable dates are ignored.
        assert_eq!(verdict(c(None, None, Some("yesterday"), None), &m), "go");
    }

    #[test]
    fn copy_sources() {
        assert_eq!(
            parse_copy_source("/bkt/a%20b/c").unwrap(),
            ("bkt".to_string(), "a b/c".to_string(), None)
        );
        assert_eq!(
            parse_copy_source("bkt/k?versionId=null").unwrap(),
            ("bkt".to_string(), "k".to_string(), Some(None))
        );
        assert!(parse_copy_source("bkt").is_err());
        assert!(parse_copy_source("bkt/").is_err());
        assert!(parse_copy_source("bkt/k?versionId=abc").is_err());
        assert!(parse_copy_source("bkt/%FF").is_err());
    }

    #[test]
    fn etag_lists() {
        assert_eq!(etag_list("\"a\", W/\"b\",*"), ["a", "b", "*"]);
    }
}
