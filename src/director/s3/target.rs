//! Where a request points (`Target`: service, bucket or object, decoded and validated in
//! one place) and the response helpers every S3 route shares.

use crate::director::error::{DirectorError, Result};
use crate::director::meta::index::{Index, ObjectMeta, valid_bucket_name, validate_key};
use crate::http::{Response, percent_decode};
use crate::s3::xml::Doc;
use crate::timefmt::http_date;

/// Where a request points, after decoding.
pub(crate) enum Target {
    Service,
    Bucket(String),
    Object(String, String),
}

pub(crate) fn parse_target(path: &str) -> Result<Target> {
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

/// An S3 XML answer.
pub(crate) fn xml(status: u16, body: String) -> Response {
    Response::text(status, "application/xml", body)
}

/// The stored headers of an object on GET and HEAD.
pub(crate) fn object_headers(mut r: Response, m: &ObjectMeta) -> Response {
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

/// The canonical id of the admin keys, owners of the buckets that have no owner key
/// (canonical ids: acl.rs).
pub const OWNER_ID: &str = "dpyfs";

/// The canonical id of a bucket's owner (`Bucket::owner`; None: the admin keys').
pub fn owner_id(owner: Option<&str>) -> &str {
    owner.unwrap_or(OWNER_ID)
}

/// The canonical id of `bucket`'s owner, who owns its objects and uploads too (listings
/// and ACL documents name it); NoSuchBucket if it does not exist.
pub fn owner_of(idx: &Index, bucket: &str) -> Result<String> {
    Ok(owner_id(idx.bucket(bucket)?.owner.as_deref()).to_string())
}

/// `<Owner>` (or `<Initiator>`) as S3 writes it in listings and ACL documents.
pub fn owner_elem(d: &mut Doc, tag: &str, id: &str) {
    d.open(tag)
        .elem("ID", id)
        .elem("DisplayName", id)
        .close(tag);
}
