//! GetObjectAttributes (`GET /bucket/key?attributes`): what HEAD and ListParts tell about
//! an object, in one XML document, for the attributes the client names in
//! `x-amz-object-attributes`.

use super::DirectorApi;
use super::target::xml;
use crate::checksum::Algorithm;
use crate::director::error::{DirectorError, Result};
use crate::director::meta::index::ObjectMeta;
use crate::director::meta::uploads::LIST_MAX;
use crate::http::{Request, Response};
use crate::s3::xml::Doc;
use crate::timefmt::http_date;

/// The attributes a client may ask for, as S3 names them.
const ATTRIBUTES: &[&str] = &[
    "ETag",
    "Checksum",
    "ObjectParts",
    "StorageClass",
    "ObjectSize",
];

fn invalid(msg: String) -> DirectorError {
    DirectorError::BadRequest("InvalidArgument", msg)
}

/// A whole-number header, or its default when absent.
fn number_header(req: &Request<'_>, name: &str, default: usize) -> Result<usize> {
    match req.header(name) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| invalid(format!("{name} {v:?} is not a whole number"))),
    }
}

/// The attributes named in `x-amz-object-attributes` (required, comma-separated).
fn asked(req: &Request<'_>) -> Result<Vec<&'static str>> {
    let h = req.header("x-amz-object-attributes").ok_or_else(|| {
        invalid(format!(
            "GetObjectAttributes needs x-amz-object-attributes (some of {})",
            ATTRIBUTES.join(", ")
        ))
    })?;
    h.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            ATTRIBUTES
                .iter()
                .find(|k| k.eq_ignore_ascii_case(a))
                .copied()
                .ok_or_else(|| invalid(format!("unknown object attribute {a:?}")))
        })
        .collect()
}

impl DirectorApi {
    pub(super) fn object_attributes(
        &self,
        bucket: &str,
        key: &str,
        req: &Request<'_>,
    ) -> Result<Response> {
        let wanted = asked(req)?;
        let max = number_header(req, "x-amz-max-parts", LIST_MAX)?.min(LIST_MAX);
        let marker = number_header(req, "x-amz-part-number-marker", 0)?;
        let m = self.requested_object(bucket, key, req)?;
        let mut d = Doc::new("GetObjectAttributesResponse");
        for a in wanted {
            match a {
                "ETag" => {
                    d.elem("ETag", &m.etag);
                }
                "Checksum" => checksum(&mut d, &m),
                "ObjectParts" => parts(&mut d, &m, marker, max),
                "StorageClass" => {
                    d.elem("StorageClass", "STANDARD");
                }
                _ => {
                    d.elem("ObjectSize", &m.size.to_string());
                }
            }
        }
        let mut r = xml(200, d.finish("GetObjectAttributesResponse"))
            .with_header("Last-Modified", http_date(m.mtime_ms));
        if let Some(v) = &m.version {
            r = r.with_header("x-amz-version-id", v.clone());
        }
        Ok(r)
    }
}

/// The object's checksum, if it has one (composite for a multipart object).
fn checksum(d: &mut Doc, m: &ObjectMeta) {
    if let Some((alg, value)) = &m.checksum {
        let kind = if value.contains('-') {
            "COMPOSITE"
        } else {
            "FULL_OBJECT"
        };
        d.open("Checksum")
            .elem(&Algorithm::element(alg), value)
            .elem("ChecksumType", kind)
            .close("Checksum");
    }
}

/// A multipart object's parts after `marker`, at most `max`: as S3, the part list only
/// when the parts have checksums, the count always. Nothing for a single-part object.
fn parts(d: &mut Doc, m: &ObjectMeta, marker: usize, max: usize) {
    if m.parts.is_empty() {
        return;
    }
    d.open("ObjectParts")
        .elem("PartsCount", &m.parts.len().to_string());
    let alg = m.checksum.as_ref().map(|(a, _)| a.as_str());
    if let Some(alg) = alg {
        let after = m.parts.len().saturating_sub(marker);
        let shown = after.min(max);
        d.elem("PartNumberMarker", &marker.to_string())
            .elem("MaxParts", &max.to_string())
            .elem("IsTruncated", if after > max { "true" } else { "false" });
        if after > max {
            d.elem("NextPartNumberMarker", &(marker + shown).to_string());
        }
        for (i, p) in m.parts.iter().enumerate().skip(marker).take(shown) {
            d.open("Part")
                .elem("PartNumber", &(i + 1).to_string())
                .elem("Size", &p.size.to_string());
            if let Some(sum) = &p.checksum {
                d.elem(&Algorithm::element(alg), sum);
            }
            d.close("Part");
        }
    }
    d.close("ObjectParts");
}
