//! The multipart routes of the S3 API (path style), as `Request -> Response`: which
//! requests are multipart operations, their query parameters, and their XML. The
//! operations themselves are in `multipart.rs`. Kept apart from `api.rs`, which only
//! asks `op` whether a request is one of these and hands it over.

use super::DirectorApi;
use super::auth::Access;
use super::body::SignatureChain;
use super::object_routes::{
    check_copy_source_conditions, parse_copy_source, stored_headers, user_meta, write_condition,
};
use super::target::Target;
use super::target::{owner_elem, owner_of};
use crate::checksum::Algorithm;
use crate::director::data::multipart::{ListedChecksums, NewUpload, completed_before};
use crate::director::error::{DirectorError, Result};
use crate::director::meta::uploads::LIST_MAX;
use crate::http::{Request, Response, percent_encode};
use crate::s3::names::CONTENT_TYPE_DEFAULT;
use crate::s3::xml as xmlparse;
use crate::s3::xml::Doc;
use crate::timefmt::iso8601;

/// Largest CompleteMultipartUpload body read: 10 000 parts with a checksum each take
/// about 2 MiB.
pub const COMPLETE_XML_BYTES_MAX: u64 = 4 << 20;

/// The multipart operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `POST /b/k?uploads`
    Create,
    /// `PUT /b/k?partNumber=N&uploadId=X` (UploadPartCopy with `x-amz-copy-source`)
    UploadPart,
    /// `POST /b/k?uploadId=X`
    Complete,
    /// `DELETE /b/k?uploadId=X`
    Abort,
    /// `GET /b/k?uploadId=X`
    ListParts,
    /// `GET /b?uploads`
    ListUploads,
}

/// Which multipart operation a request is, if any. Flags count with or without a value
/// (`?uploads` and rclone's `?uploads=`).
pub(super) fn op(method: &str, target: &Target, req: &Request<'_>) -> Option<Op> {
    let has = |k: &str| req.query_params().iter().any(|(n, _)| n == k);
    match (method, target) {
        ("POST", Target::Object(..)) if has("uploads") => Some(Op::Create),
        ("POST", Target::Object(..)) if has("uploadId") => Some(Op::Complete),
        ("PUT", Target::Object(..)) if has("uploadId") || has("partNumber") => Some(Op::UploadPart),
        ("GET", Target::Object(..)) if has("uploadId") => Some(Op::ListParts),
        ("DELETE", Target::Object(..)) if has("uploadId") => Some(Op::Abort),
        ("GET", Target::Bucket(_)) if has("uploads") => Some(Op::ListUploads),
        _ => None,
    }
}

impl Op {
    /// The query parameters each operation understands (anything else is refused).
    pub fn params(self) -> &'static [&'static str] {
        match self {
            Op::Create => &["uploads"],
            Op::UploadPart => &["partNumber", "uploadId"],
            Op::Complete | Op::Abort => &["uploadId"],
            Op::ListParts => &["uploadId", "max-parts", "part-number-marker"],
            Op::ListUploads => &[
                "uploads",
                "prefix",
                "delimiter",
                "key-marker",
                "upload-id-marker",
                "max-uploads",
                "encoding-type",
            ],
        }
    }

    fn route_name(self) -> &'static str {
        match self {
            Op::Create => "create_multipart_upload",
            Op::UploadPart => "upload_part",
            Op::Complete => "complete_multipart_upload",
            Op::Abort => "abort_multipart_upload",
            Op::ListParts => "list_parts",
            Op::ListUploads => "list_multipart_uploads",
        }
    }
}

fn xml(body: String) -> Response {
    Response::text(200, "application/xml", body)
}

fn invalid(msg: String) -> DirectorError {
    DirectorError::BadRequest("InvalidArgument", msg)
}

fn malformed(msg: String) -> DirectorError {
    DirectorError::BadRequest(
        "MalformedXML",
        format!("the XML you provided was not well-formed or did not validate: {msg}"),
    )
}

/// A numeric query parameter, `default` when absent.
fn number<T: std::str::FromStr>(req: &Request<'_>, name: &str, default: T) -> Result<T> {
    match req.query_param(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<T>()
            .map_err(|_| invalid(format!("{name} {v:?} is not a valid number"))),
    }
}

fn upload_id(req: &Request<'_>) -> Result<String> {
    req.query_param("uploadId")
        .ok_or_else(|| invalid("the request needs an uploadId".into()))
}

impl DirectorApi {
    /// Runs a multipart operation (the caller has refused unknown parameters).
    pub(super) fn multipart(
        &self,
        op: Op,
        target: Target,
        req: &mut Request<'_>,
        chain: Option<Box<dyn SignatureChain>>,
        access: &Access,
    ) -> (&'static str, Result<Response>) {
        let r = match (op, target) {
            (Op::ListUploads, Target::Bucket(b)) => self.list_uploads(&b, req),
            (Op::Create, Target::Object(b, k)) => self.create_upload(b, k, req),
            (Op::UploadPart, Target::Object(b, k)) => self.upload_part(&b, &k, req, chain, access),
            (Op::Complete, Target::Object(b, k)) => self.complete_upload(&b, &k, req),
            (Op::Abort, Target::Object(b, k)) => upload_id(req)
                .and_then(|id| self.director.abort_upload(&b, &k, &id))
                .map(|()| Response::empty(204)),
            (Op::ListParts, Target::Object(b, k)) => self.list_parts(&b, &k, req),
            _ => Err(DirectorError::Internal("multipart route mismatch".into())),
        };
        (op.route_name(), r)
    }

    fn create_upload(&self, bucket: String, key: String, req: &Request<'_>) -> Result<Response> {
        let acl = self.request_acl(req, &bucket)?;
        let content_type = req
            .header("content-type")
            .unwrap_or(CONTENT_TYPE_DEFAULT)
            .to_string();
        let checksum_algorithm = upload_checksum_algorithm(req)?;
        let id = self.director.create_upload(NewUpload {
            bucket: bucket.clone(),
            key: key.clone(),
            content_type,
            meta: user_meta(req),
            headers: stored_headers(req),
            checksum_algorithm,
            acl,
        })?;
        let mut d = Doc::new("InitiateMultipartUploadResult");
        d.elem("Bucket", &bucket)
            .elem("Key", &key)
            .elem("UploadId", &id);
        let mut r = xml(d.finish("InitiateMultipartUploadResult"));
        if let Some(a) = checksum_algorithm {
            r = r
                .with_header("x-amz-checksum-algorithm", a.name().to_uppercase())
                .with_header("x-amz-checksum-type", "COMPOSITE");
        }
        Ok(r)
    }

    fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        req: &mut Request<'_>,
        chain: Option<Box<dyn SignatureChain>>,
        access: &Access,
    ) -> Result<Response> {
        let id = upload_id(req)?;
        let number = req
            .query_param("partNumber")
            .ok_or_else(|| invalid("the request needs a partNumber".into()))?;
        let number: u32 = number.parse().map_err(|_| {
            invalid(format!(
                "part number {number:?}: it must be an integer between 1 and 10000"
            ))
        })?;
        if let Some(src) = req.header("x-amz-copy-source") {
            return self.upload_part_copy(bucket, key, (&id, number), src, req, access);
        }
        // Verified as it is read, as an object PUT's body (aws-chunked, checksums).
        let mut body = super::body::open(req, chain)?;
        let p = self
            .director
            .upload_part(bucket, key, &id, number, &mut body)?;
        let mut r = Response::empty(200).with_header("ETag", format!("\"{}\"", p.etag));
        if let Some((alg, value)) = body.checksum() {
            r = r.with_header(&format!("x-amz-checksum-{alg}"), value);
        }
        Ok(r)
    }

    /// UploadPartCopy: `x-amz-copy-source: [/]bucket/key[?versionId=ID]`, URL-encoded,
    /// and optionally `x-amz-copy-source-range: bytes=first-last`.
    fn upload_part_copy(
        &self,
        bucket: &str,
        key: &str,
        (id, number): (&str, u32),
        src: &str,
        req: &Request<'_>,
        access: &Access,
    ) -> Result<Response> {
        let (sb, sk, sv) = parse_copy_source(src)?;
        // The upload is checked first: an unknown upload is NoSuchUpload whatever the source.
        self.director.read_index().upload(bucket, key, id)?;
        let m = super::object_versions::copy_source_object(
            &self.director.read_index(),
            &sb,
            &sk,
            sv.as_ref().map(Option::as_deref),
            access,
        )?;
        check_copy_source_conditions(req, &m)?;
        let (start, end) = match req.header("x-amz-copy-source-range") {
            None => (0, m.size),
            Some(r) => parse_copy_range(r, m.size)?,
        };
        let p = self
            .director
            .upload_part_copy(bucket, key, id, number, &m, start, end)?;
        let mut d = Doc::new("CopyPartResult");
        d.elem("LastModified", &iso8601(p.mtime_ms))
            .elem("ETag", &format!("\"{}\"", p.etag));
        // The copied part's checksum under its upload's algorithm, as S3 answers it.
        let alg = self
            .director
            .read_index()
            .upload(bucket, key, id)
            .ok()
            .and_then(|u| u.checksum_algorithm.clone());
        if let (Some(alg), Some(sum)) = (alg, &p.checksum) {
            d.elem(&Algorithm::element(&alg), sum);
        }
        Ok(xml(d.finish("CopyPartResult")))
    }

    fn complete_upload(&self, bucket: &str, key: &str, req: &mut Request<'_>) -> Result<Response> {
        let id = upload_id(req)?;
        let condition = write_condition(req)?;
        // Checked before the body is read: an unknown upload is NoSuchUpload (unless it
        // was completed into the key's current object: a retry), a failed condition 412.
        {
            let idx = self.director.read_index();
            match idx.upload(bucket, key, &id) {
                Ok(_) => condition.check(&idx, bucket, key)?,
                Err(e) => {
                    completed_before(&idx, bucket, key, &id, None).ok_or(e)?;
                }
            }
        }
        let body = super::body::read_small(req, COMPLETE_XML_BYTES_MAX, |max| {
            malformed(format!("the body is larger than {max} bytes"))
        })?;
        let text = String::from_utf8(body).map_err(|_| malformed("not UTF-8".into()))?;
        let (parts, sums) = parse_complete(&text)?;
        let m = self
            .director
            .complete_upload(bucket, key, &id, &parts, &sums, &condition)?;
        let host = req.header("host").unwrap_or("localhost");
        let path = format!(
            "/{}/{}",
            percent_encode(bucket, false),
            percent_encode(key, true)
        );
        let mut d = Doc::new("CompleteMultipartUploadResult");
        let scheme = self.director.cfg.scheme();
        d.elem("Location", &format!("{scheme}://{host}{path}"))
            .elem("Bucket", bucket)
            .elem("Key", key)
            .elem("ETag", &format!("\"{}\"", m.etag));
        if let Some((alg, value)) = &m.checksum {
            d.elem(&Algorithm::element(alg), value)
                .elem("ChecksumType", "COMPOSITE");
        }
        let r = xml(d.finish("CompleteMultipartUploadResult"));
        Ok(super::object_versions::with_version_id(
            r,
            self.versioning_of(bucket),
            &m,
        ))
    }

    fn list_parts(&self, bucket: &str, key: &str, req: &Request<'_>) -> Result<Response> {
        let id = upload_id(req)?;
        let max = number(req, "max-parts", LIST_MAX)?.min(LIST_MAX);
        let marker: u32 = number(req, "part-number-marker", 0)?;
        let idx = self.director.read_index();
        let up = idx.upload(bucket, key, &id)?;
        // Uploads, like objects, belong to the bucket's owner (acl.rs).
        let owner = owner_of(&idx, bucket)?;
        let mut d = Doc::new("ListPartsResult");
        d.elem("Bucket", bucket)
            .elem("Key", key)
            .elem("UploadId", &id);
        owner_elem(&mut d, "Initiator", &owner);
        owner_elem(&mut d, "Owner", &owner);
        d.elem("StorageClass", "STANDARD")
            .elem("PartNumberMarker", &marker.to_string());
        let after: Vec<_> = up
            .parts
            .range(marker.saturating_add(1)..)
            .take(max.saturating_add(1))
            .collect();
        let truncated = after.len() > max;
        let shown = &after[..after.len().min(max)];
        if let Some((n, _)) = shown.last() {
            d.elem("NextPartNumberMarker", &n.to_string());
        }
        d.elem("MaxParts", &max.to_string())
            .elem("IsTruncated", if truncated { "true" } else { "false" });
        for (n, p) in shown {
            d.open("Part")
                .elem("PartNumber", &n.to_string())
                .elem("LastModified", &iso8601(p.mtime_ms))
                .elem("ETag", &format!("\"{}\"", p.etag))
                .elem("Size", &p.size.to_string());
            if let (Some(alg), Some(sum)) = (&up.checksum_algorithm, &p.checksum) {
                d.elem(&Algorithm::element(alg), sum);
            }
            d.close("Part");
        }
        Ok(xml(d.finish("ListPartsResult")))
    }

    fn list_uploads(&self, bucket: &str, req: &Request<'_>) -> Result<Response> {
        if req.query_param("delimiter").is_some_and(|d| !d.is_empty()) {
            return Err(DirectorError::NotImplemented(
                "the delimiter parameter of ListMultipartUploads".into(),
            ));
        }
        let prefix = req.query_param("prefix").unwrap_or_default();
        let key_marker = req.query_param("key-marker").unwrap_or_default();
        let id_marker = req.query_param("upload-id-marker").unwrap_or_default();
        let max = number(req, "max-uploads", LIST_MAX)?.min(LIST_MAX);
        let url_encode = req.query_param("encoding-type").as_deref() == Some("url");
        let enc = |s: &str| {
            if url_encode {
                percent_encode(s, true)
            } else {
                s.to_string()
            }
        };
        let (page, owner) = {
            let idx = self.director.read_index();
            let page = idx.list_uploads(bucket, &prefix, &key_marker, &id_marker, max)?;
            (page, owner_of(&idx, bucket)?)
        };
        let mut d = Doc::new("ListMultipartUploadsResult");
        d.elem("Bucket", bucket)
            .elem("KeyMarker", &enc(&key_marker))
            .elem("UploadIdMarker", &id_marker)
            .elem("Prefix", &enc(&prefix));
        if url_encode {
            d.elem("EncodingType", "url");
        }
        if let (true, Some(last)) = (page.truncated, page.entries.last()) {
            d.elem("NextKeyMarker", &enc(&last.key))
                .elem("NextUploadIdMarker", &last.upload_id);
        }
        d.elem("MaxUploads", &max.to_string())
            .elem("IsTruncated", if page.truncated { "true" } else { "false" });
        for u in &page.entries {
            d.open("Upload")
                .elem("Key", &enc(&u.key))
                .elem("UploadId", &u.upload_id);
            owner_elem(&mut d, "Initiator", &owner);
            owner_elem(&mut d, "Owner", &owner);
            d.elem("StorageClass", "STANDARD")
                .elem("Initiated", &iso8601(u.initiated_ms))
                .close("Upload");
        }
        Ok(xml(d.finish("ListMultipartUploadsResult")))
    }
}

/// The checksum algorithm CreateMultipartUpload asks for (`x-amz-checksum-algorithm`), with
/// S3's composite type: each part carries its checksum, the object the checksum of theirs.
/// The full-object type (`x-amz-checksum-type: FULL_OBJECT`, and CRC64NVME, which has only
/// that type) is not offered.
fn upload_checksum_algorithm(req: &Request<'_>) -> Result<Option<Algorithm>> {
    let kind = req.header("x-amz-checksum-type").map(str::trim);
    let Some(name) = req.header("x-amz-checksum-algorithm").map(str::trim) else {
        return match kind {
            None => Ok(None),
            Some(_) => Err(invalid(
                "x-amz-checksum-type needs x-amz-checksum-algorithm".into(),
            )),
        };
    };
    let alg = Algorithm::from_name(&name.to_ascii_lowercase())
        .ok_or_else(|| invalid(format!("unknown x-amz-checksum-algorithm {name:?}")))?;
    let full_object = match kind {
        None => alg == Algorithm::Crc64Nvme,
        Some(k) if k.eq_ignore_ascii_case("COMPOSITE") => false,
        Some(k) if k.eq_ignore_ascii_case("FULL_OBJECT") => true,
        Some(k) => return Err(invalid(format!("unknown x-amz-checksum-type {k:?}"))),
    };
    if full_object {
        return Err(DirectorError::NotImplemented(format!(
            "full-object checksums of multipart uploads ({} FULL_OBJECT); use CRC32, CRC32C, \
             SHA1 or SHA256 with the COMPOSITE type",
            alg.name().to_uppercase()
        )));
    }
    Ok(Some(alg))
}

/// `[(part number, etag)]` from a CompleteMultipartUpload document, and the checksums
/// listed with the parts (`<ChecksumCRC32>`... that SDKs add). Each `<Part>` needs
/// exactly one `<PartNumber>` and one `<ETag>`; other elements in a part are accepted and
/// ignored; anything else in the root is refused.
pub fn parse_complete(text: &str) -> Result<(Vec<(u32, String)>, ListedChecksums)> {
    let root = xmlparse::parse(text).map_err(malformed)?;
    if root.name != "CompleteMultipartUpload" {
        return Err(malformed(format!(
            "the root element is <{}>, not <CompleteMultipartUpload>",
            root.name
        )));
    }
    let mut out = Vec::with_capacity(root.children.len());
    let mut sums = ListedChecksums::new();
    for p in &root.children {
        if p.name != "Part" {
            return Err(malformed(format!("unexpected element <{}>", p.name)));
        }
        let n = p
            .one_text("PartNumber")
            .ok_or_else(|| malformed("a <Part> needs one <PartNumber>".into()))?;
        let n: u32 = n.parse().map_err(|_| {
            DirectorError::S3(
                400,
                "InvalidPart",
                format!("part number {n:?} is not a number"),
            )
        })?;
        let etag = p
            .one_text("ETag")
            .ok_or_else(|| malformed(format!("part {n} needs one <ETag>")))?;
        out.push((n, etag.to_string()));
        for c in &p.children {
            let alg = c.name.strip_prefix("Checksum").map(str::to_ascii_lowercase);
            if let Some(alg) = alg.filter(|a| Algorithm::from_name(a).is_some()) {
                let value = c.text.trim().to_string();
                sums.insert(n, (alg, value));
            }
        }
    }
    Ok((out, sums))
}

/// `bytes=first-last` (both given, inclusive) within an object of `size` bytes, as
/// `start..end`.
pub fn parse_copy_range(r: &str, size: u64) -> Result<(u64, u64)> {
    let bad = || {
        invalid(format!(
            "x-amz-copy-source-range {r:?}: use bytes=first-last, first <= last"
        ))
    };
    let (a, b) = r
        .trim()
        .strip_prefix("bytes=")
        .and_then(|s| s.split_once('-'))
        .ok_or_else(bad)?;
    let (a, b) = (
        a.trim().parse::<u64>().map_err(|_| bad())?,
        b.trim().parse::<u64>().map_err(|_| bad())?,
    );
    if a > b {
        return Err(bad());
    }
    if b >= size {
        return Err(DirectorError::InvalidRange { size });
    }
    Ok((a, b + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_documents() {
        let ok = "<CompleteMultipartUpload><Part><PartNumber>2</PartNumber><ETag>\"ab\"</ETag><ChecksumCRC32>x</ChecksumCRC32></Part></CompleteMultipartUpload>";
        let (parts, sums) = parse_complete(ok).unwrap();
        assert_eq!(parts, [(2, "\"ab\"".to_string())]);
        assert_eq!(sums[&2], ("crc32".to_string(), "x".to_string()));
        let code = |doc: &str| parse_complete(doc).unwrap_err().status_and_code().1;
        assert_eq!(code("<Other/>"), "MalformedXML");
        assert_eq!(
            code("<CompleteMultipartUpload><Part><ETag>x</ETag></Part></CompleteMultipartUpload>"),
            "MalformedXML"
        );
        assert_eq!(
            code(
                "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>"
            ),
            "MalformedXML"
        );
        assert_eq!(
            code(
                "<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>"
            ),
            "InvalidPart"
        );
        assert_eq!(
            code("<CompleteMultipartUpload><Foo/></CompleteMultipartUpload>"),
            "MalformedXML"
        );
        assert_eq!(code("<CompleteMultipartUpload>"), "MalformedXML");
    }

    #[test]
    fn copy_sources_and_ranges() {
        assert_eq!(
            parse_copy_source("/src/a%20b/c").unwrap(),
            ("src".to_string(), "a b/c".to_string(), None)
        );
        assert_eq!(
            parse_copy_source("src/k?versionId=null").unwrap(),
            ("src".to_string(), "k".to_string(), Some(None))
        );
        assert_eq!(
            parse_copy_source("src/k?versionId=3")
                .unwrap_err()
                .status_and_code(),
            (400, "InvalidArgument")
        );
        assert!(parse_copy_source("src").is_err());
        assert!(parse_copy_source("src/").is_err());
        assert!(parse_copy_source("BAD/k").is_err());
        assert_eq!(parse_copy_range("bytes=0-9", 10).unwrap(), (0, 10));
        assert_eq!(parse_copy_range("bytes=3-3", 10).unwrap(), (3, 4));
        assert!(matches!(
            parse_copy_range("bytes=5-10", 10),
            Err(DirectorError::InvalidRange { .. })
        ));
        for bad in ["bytes=5-2", "bytes=-2", "bytes=1-", "items=0-1", "0-1"] {
            assert!(parse_copy_range(bad, 10).is_err(), "{bad}");
        }
    }
}
