//! Where a request points (`Target`: service, bucket or object, decoded and validated in
//! one place) and the response helpers every S3 route shares.

use crate::director::error::{DirectorError, Result};
use crate::director::meta::index::{ObjectMeta, valid_bucket_name, validate_key};
use crate::http::{Response, percent_decode};
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
