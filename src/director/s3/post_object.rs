//! POST Object: a browser form upload (`POST /bucket`, `multipart/form-data`) authorized by
//! a POST policy the key's owner signed (SigV4), and the upload form page
//! (`GET /_dpyfs/upload?bucket=B`) that signs one for a signed-in key.
//!
//! A form carries no `Authorization` header: the request arrives unsigned and is routed
//! here before the usual checks (`DirectorApi::form_routes`). The fields before the
//! `file` part are read (at most `POST_FORM_FIELDS_BYTES_MAX`), the policy's signature and
//! every condition are checked, the key must be the signer's to write like a PutObject,
//! and only then is the file part streamed to the stores, never held in memory. Fields
//! after the file are ignored (S3's rule). A content-length-range violation or a body cut
//! short stops the upload before anything is journaled; chunks already sent are garbage
//! for GC, as with a failed PUT.

use super::DirectorApi;
use super::acl;
use super::auth::{Access, Principal, key_access, signature_mismatch, unsigned_denied};
use super::body::{self, BodyCheckError};
use super::object_routes::{stored_headers, user_meta};
use super::object_versions::with_version_id;
use super::target::{Target, parse_target, xml};
use crate::director::data::scatter::NewObject;
use crate::director::error::{DirectorError, Result};
use crate::director::meta::index::validate_key;
use crate::http::{Request, Response, percent_encode};
use crate::s3::form::{self, FormError, FormReader, PartHead};
use crate::s3::names::CONTENT_TYPE_DEFAULT;
use crate::s3::xml::Doc;
use crate::sigv4;
use crate::timefmt::{amz_date, iso8601, parse_amz_date};
use std::collections::BTreeMap;
use std::io::{self, Read};

/// Most bytes of the form fields before the file (names and values): they are read into
/// memory to check the policy. S3 allows 20 KB; a signed policy with many conditions is
/// well under that.
pub const POST_FORM_FIELDS_BYTES_MAX: u64 = 64 * 1024;
/// Most form fields before the file.
pub const POST_FORM_FIELDS_MAX: usize = 200;
/// How long the policy of an upload form page stays valid.
pub const UPLOAD_FORM_VALIDITY_SECS: u64 = 3600;
/// The largest file an upload form page's policy allows (S3's single-PUT limit).
pub const UPLOAD_FORM_BYTES_MAX: u64 = 5 * 1024 * 1024 * 1024;
/// The region dpyfs answers as, in the credentials of the policies it signs.
const REGION: &str = "us-east-1";

/// Fields no policy condition needs to cover (S3's list).
fn exempt(name: &str) -> bool {
    matches!(name, "x-amz-signature" | "file" | "policy") || name.starts_with("x-ignore-")
}

fn bad(code: &'static str, msg: impl Into<String>) -> DirectorError {
    DirectorError::BadRequest(code, msg.into())
}

fn policy_denied(why: impl std::fmt::Display) -> DirectorError {
    DirectorError::S3(
        403,
        "AccessDenied",
        format!("Invalid according to Policy: {why}"),
    )
}

fn form_error(e: FormError) -> DirectorError {
    match e {
        FormError::Malformed(m) => bad(
            "MalformedPOSTRequest",
            format!("The body of your POST request is not well-formed multipart/form-data: {m}"),
        ),
        FormError::Truncated => DirectorError::BodyRead(e.to_string()),
        FormError::Io(m) => DirectorError::BodyRead(m),
    }
}

/// Whether `req` is a form upload (POST Object): a POST to a bucket, without a query,
/// with a multipart/form-data body.
pub(super) fn is_form_post(req: &Request<'_>) -> bool {
    req.method == "POST"
        && req.query.is_empty()
        && matches!(parse_target(&req.path), Ok(Target::Bucket(_)))
        && req
            .header("content-type")
            .is_some_and(|ct| form::boundary(ct).is_some())
}

/// The form fields before the file (names lowercase, as S3 compares them) and the file
/// part's head; the reader is left at the start of the file's data.
struct Fields {
    values: BTreeMap<String, String>,
    file: PartHead,
}

impl Fields {
    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

fn read_fields<R: Read>(reader: &mut FormReader<R>) -> Result<Fields> {
    let mut values = BTreeMap::new();
    let mut total: u64 = 0;
    let too_big = || {
        bad(
            "MaxPostPreDataLengthExceeded",
            format!(
                "Your POST request fields preceding the upload file were too large (more than {POST_FORM_FIELDS_BYTES_MAX} bytes or {POST_FORM_FIELDS_MAX} fields)."
            ),
        )
    };
    loop {
        let Some(head) = reader.next_part().map_err(form_error)? else {
            return Err(bad(
                "InvalidArgument",
                "POST requires exactly one file upload per request (a field named 'file', last).",
            ));
        };
        let name = head.name.to_ascii_lowercase();
        if name == "file" {
            return Ok(Fields { values, file: head });
        }
        total += name.len() as u64;
        let left = POST_FORM_FIELDS_BYTES_MAX.saturating_sub(total);
        let value = reader
            .read_value(left)
            .map_err(form_error)?
            .ok_or_else(too_big)?;
        total += value.len() as u64;
        let value = String::from_utf8(value).map_err(|_| {
            bad(
                "InvalidArgument",
                format!("the form field '{name}' is not UTF-8"),
            )
        })?;
        if values.len() >= POST_FORM_FIELDS_MAX {
            return Err(too_big());
        }
        if values.insert(name.clone(), value).is_some() {
            return Err(bad(
                "InvalidArgument",
                format!("the form field '{name}' is given twice"),
            ));
        }
    }
}

/// One condition of a POST policy (field names lowercase, without `$`).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Condition {
    Eq(String, String),
    StartsWith(String, String),
    LengthRange(u64, u64),
}

/// A decoded POST policy: when it expires and what it requires.
#[derive(Debug)]
struct Policy {
    expiration_ms: u64,
    conditions: Vec<Condition>,
}

fn invalid_policy(msg: impl Into<String>) -> DirectorError {
    bad("InvalidPolicyDocument", msg)
}

/// `2026-12-06T12:00:00.000Z` (fraction optional) to unix milliseconds.
fn parse_expiration(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => (w, f),
        Some(_) => return None,
        None => (s, ""),
    };
    let basic: String = whole.chars().filter(|c| *c != '-' && *c != ':').collect();
    let ms = parse_amz_date(&format!("{basic}Z"))?;
    let frac_ms = format!("{frac:0<3}").get(..3)?.parse::<u64>().ok()?;
    Some(ms + frac_ms)
}

/// A number in a policy: JSON number or decimal string (SDKs write both).
fn policy_number(v: &serde_json::Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())
}

impl Policy {
    /// Decodes the base64 `policy` field.
    fn parse(b64: &str) -> Result<Policy> {
        let bytes = crate::checksum::base64_decode(b64.trim())
            .ok_or_else(|| invalid_policy("the policy is not base64"))?;
        let doc: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| invalid_policy(format!("the policy is not JSON: {e}")))?;
        let expiration = doc["expiration"]
            .as_str()
            .ok_or_else(|| invalid_policy("the policy has no expiration"))?;
        let expiration_ms = parse_expiration(expiration).ok_or_else(|| {
            invalid_policy(format!(
                "the expiration {expiration:?} is not an ISO 8601 UTC time"
            ))
        })?;
        let list = doc["conditions"]
            .as_array()
            .ok_or_else(|| invalid_policy("the policy has no conditions list"))?;
        let mut conditions = Vec::new();
        for c in list {
            conditions.extend(Condition::parse(c)?);
        }
        Ok(Policy {
            expiration_ms,
            conditions,
        })
    }

    /// `["content-length-range", min, max]` if the policy has one.
    fn length_range(&self) -> Option<(u64, u64)> {
        self.conditions.iter().find_map(|c| match c {
            Condition::LengthRange(a, b) => Some((*a, *b)),
            _ => None,
        })
    }

    /// Checks expiry, every condition against the form (`value_of`: a field's value,
    /// the bucket and the expanded key included), and that every field is covered.
    fn check(&self, now_ms: u64, names: &[&str], value_of: &dyn Fn(&str) -> String) -> Result<()> {
        if now_ms > self.expiration_ms {
            return Err(policy_denied("Policy expired."));
        }
        for c in &self.conditions {
            let ok = match c {
                Condition::Eq(f, v) => value_of(f) == *v,
                // A Content-Type may list several types: each must match.
                Condition::StartsWith(f, p) if f == "content-type" => value_of(f)
                    .split(',')
                    .all(|t| t.trim_start().starts_with(p.as_str())),
                Condition::StartsWith(f, p) => value_of(f).starts_with(p.as_str()),
                Condition::LengthRange(..) => true,
            };
            if !ok {
                return Err(policy_denied(format!(
                    "Policy Condition failed: {}",
                    c.text()
                )));
            }
        }
        let covered = |n: &str| {
            self.conditions.iter().any(|c| match c {
                Condition::Eq(f, _) | Condition::StartsWith(f, _) => f == n,
                Condition::LengthRange(..) => false,
            })
        };
        let extra: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !exempt(n) && !covered(n))
            .collect();
        if !extra.is_empty() {
            return Err(policy_denied(format!(
                "Extra input fields: {}",
                extra.join(", ")
            )));
        }
        Ok(())
    }
}

impl Condition {
    /// The conditions one policy element holds (an object may hold several exact
    /// matches).
    fn parse(c: &serde_json::Value) -> Result<Vec<Condition>> {
        let field = |v: &serde_json::Value| -> Result<String> {
            let f = v.as_str().ok_or_else(|| {
                invalid_policy(format!("a condition's field is not a string: {c}"))
            })?;
            Ok(f.strip_prefix('$').unwrap_or(f).to_ascii_lowercase())
        };
        let text = |v: &serde_json::Value| -> Result<String> {
            v.as_str()
                .map(str::to_string)
                .ok_or_else(|| invalid_policy(format!("a condition's value is not a string: {c}")))
        };
        if let Some(map) = c.as_object() {
            return map
                .iter()
                .map(|(k, v)| Ok(Condition::Eq(k.to_ascii_lowercase(), text(v)?)))
                .collect();
        }
        let Some([op, a, b]) = c.as_array().map(Vec::as_slice) else {
            return Err(invalid_policy(format!(
                "a condition is neither an object nor a list of three: {c}"
            )));
        };
        let op = op.as_str().unwrap_or_default().to_ascii_lowercase();
        let one = match op.as_str() {
            "eq" => Condition::Eq(field(a)?, text(b)?),
            "starts-with" => Condition::StartsWith(field(a)?, text(b)?),
            "content-length-range" => match (policy_number(a), policy_number(b)) {
                (Some(min), Some(max)) if min <= max => Condition::LengthRange(min, max),
                _ => {
                    return Err(invalid_policy(format!(
                        "content-length-range needs two sizes, min <= max: {c}"
                    )));
                }
            },
            _ => {
                return Err(invalid_policy(format!("unknown condition operator: {c}")));
            }
        };
        Ok(vec![one])
    }

    /// The condition as S3 quotes it in an error message.
    fn text(&self) -> String {
        match self {
            Condition::Eq(f, v) => format!("[\"eq\", \"${f}\", {}]", serde_json::json!(v)),
            Condition::StartsWith(f, v) => {
                format!("[\"starts-with\", \"${f}\", {}]", serde_json::json!(v))
            }
            Condition::LengthRange(a, b) => format!("[\"content-length-range\", {a}, {b}]"),
        }
    }
}

/// The file part's data as a body: refused past `max` bytes (as it streams) or under
/// `min` at its end, with S3's codes; form errors carry their own.
struct FileBody<'a, R: Read> {
    form: &'a mut FormReader<R>,
    min: u64,
    max: u64,
    got: u64,
}

fn check_error(status: u16, code: &'static str, message: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        BodyCheckError {
            status,
            code,
            message,
        },
    )
}

impl<R: Read> Read for FileBody<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = self
            .form
            .read(out)
            .map_err(|e| match FormError::from_io(&e) {
                FormError::Io(_) => e,
                f => {
                    let (s, c) = form_error(f.clone()).status_and_code();
                    check_error(s, c, f.to_string())
                }
            })?;
        self.got += n as u64;
        if self.got > self.max {
            return Err(check_error(
                400,
                "EntityTooLarge",
                format!(
                    "Your proposed upload exceeds the maximum allowed size ({} bytes, the policy's content-length-range).",
                    self.max
                ),
            ));
        }
        if n == 0 && self.got < self.min {
            return Err(check_error(
                400,
                "EntityTooSmall",
                format!(
                    "Your proposed upload is smaller than the minimum allowed size ({} bytes, the policy's content-length-range).",
                    self.min
                ),
            ));
        }
        Ok(n)
    }
}

/// `${filename}` in the key field replaced by the file's name (its last path segment:
/// old browsers send a whole Windows path).
fn expand_key(key: &str, filename: Option<&str>) -> String {
    let name = filename.unwrap_or_default();
    let base = name.rsplit(['/', '\\']).next().unwrap_or(name);
    key.replace("${filename}", base)
}

/// Who signed the form: checks the SigV4 fields and the policy's signature. On an open
/// director nothing is verified (as for every request there) but the policy's conditions
/// still are; a keyed director requires a signed policy.
fn form_signer(
    api: &DirectorApi,
    req: &Request<'_>,
    f: &Fields,
) -> Result<(Access, Option<Policy>)> {
    if f.get("awsaccesskeyid").is_some() || f.get("signature").is_some() {
        return Err(DirectorError::NotImplemented(
            "Signature Version 2 POST policies (AWSAccessKeyId, signature): sign the policy with AWS4-HMAC-SHA256".into(),
        ));
    }
    if f.get("x-amz-security-token").is_some() {
        return Err(DirectorError::NotImplemented(
            "temporary credentials (x-amz-security-token)".into(),
        ));
    }
    let policy = f.get("policy").map(Policy::parse).transpose()?;
    if api.auth.is_open() {
        return Ok((Access::open(), policy));
    }
    if policy.is_none() {
        // An unsigned form: an anonymous upload, let through only where the bucket's
        // ACL grants everyone WRITE (`check_form_write`).
        let anonymous = Access {
            principal: Principal::Anonymous,
            chain: None,
        };
        return Ok((anonymous, None));
    }
    let field = |n: &str| {
        f.get(n).ok_or_else(|| {
            bad(
                "InvalidArgument",
                format!("Bucket POST must contain a field named '{n}' (a policy is signed)."),
            )
        })
    };
    let algorithm = field("x-amz-algorithm")?;
    if algorithm != sigv4::ALGORITHM {
        return Err(bad(
            "InvalidArgument",
            format!(
                "x-amz-algorithm {algorithm:?}: only {} is offered",
                sigv4::ALGORITHM
            ),
        ));
    }
    let (access_key, scope) = sigv4::parse_credential(field("x-amz-credential")?)
        .map_err(|e| bad("InvalidArgument", e))?;
    let date = field("x-amz-date")?;
    if parse_amz_date(date).is_none() || date.get(..8) != Some(scope.date.as_str()) {
        return Err(bad(
            "InvalidArgument",
            format!(
                "x-amz-date {date:?} is not a time (yyyymmddThhmmssZ) of the credential's date {}",
                scope.date
            ),
        ));
    }
    let signature = field("x-amz-signature")?;
    // None only without keys, answered above.
    let Some(key) = api.auth.form_key(req, &access_key)? else {
        return Ok((Access::open(), policy));
    };
    let signing_key =
        sigv4::signing_key(&key.secret_key, &scope.date, &scope.region, &scope.service);
    let want = sigv4::signature(&signing_key, field("policy")?);
    if !sigv4::same_signature(&want, &signature.to_ascii_lowercase()) {
        log::info!(
            "refused POST {}: policy signature mismatch for key {access_key}",
            req.path
        );
        return Err(signature_mismatch());
    }
    Ok((key_access(key), policy))
}

/// A request whose headers are the form's object fields (`Content-Type`, `Cache-Control`,
/// `x-amz-meta-*`, `acl` as `x-amz-acl`, ...), for the checks and readers a PutObject
/// uses on its headers. A value that is not printable ASCII is refused, as in a
/// PutObject's headers: it would come back in a response header on every GET.
fn field_headers(f: &Fields) -> Result<Vec<(String, String)>> {
    let headers: Vec<(String, String)> = f
        .values
        .iter()
        .filter(|(n, _)| !exempt(n) && !n.starts_with("x-amz-checksum-"))
        .map(|(n, v)| match n.as_str() {
            "acl" => ("x-amz-acl".to_string(), v.clone()),
            _ => (n.clone(), v.clone()),
        })
        .filter(|(n, _)| {
            n == "content-type"
                || n == "x-amz-acl"
                || n.starts_with("x-amz-meta-")
                || crate::director::meta::index::STORED_HEADERS.contains(&n.as_str())
        })
        .collect();
    let printable = |v: &str| v.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
    if let Some((n, _)) = headers.iter().find(|(_, v)| !printable(v)) {
        return Err(bad(
            "InvalidArgument",
            format!(
                "the form field '{n}' is stored as a header: its value must be printable ASCII (encode others as RFC 2047 does)"
            ),
        ));
    }
    Ok(headers)
}

/// The object key (`${filename}` expanded, validated) and the file's size range, once
/// the policy (if any) holds for every field.
fn checked_key(
    f: &Fields,
    policy: Option<&Policy>,
    bucket: &str,
    now_ms: u64,
) -> Result<(String, u64, u64)> {
    let key_field = f.get("key").ok_or_else(|| {
        bad(
            "InvalidArgument",
            "Bucket POST must contain a field named 'key'.",
        )
    })?;
    let key = expand_key(key_field, f.file.filename.as_deref());
    validate_key(&key)?;
    let (min, max) = match policy {
        Some(p) => {
            let names: Vec<&str> = f.values.keys().map(String::as_str).collect();
            let value_of = |n: &str| match n {
                "bucket" => bucket.to_string(),
                "key" => key.clone(),
                _ => f.get(n).unwrap_or_default().to_string(),
            };
            p.check(now_ms, &names, &value_of)?;
            p.length_range().unwrap_or((0, u64::MAX))
        }
        None => (0, u64::MAX),
    };
    if let Some(n) = f.values.keys().find(|n| n.starts_with("x-amz-checksum-")) {
        return Err(DirectorError::NotImplemented(format!(
            "checksums of form uploads ({n})"
        )));
    }
    Ok((key, min, max))
}

/// `url` with the upload's bucket, key and ETag as query parameters (S3's redirect).
fn redirect_url(url: &str, bucket: &str, key: &str, etag: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{sep}bucket={}&key={}&etag={}",
        percent_encode(bucket, false),
        percent_encode(key, false),
        percent_encode(&format!("\"{etag}\""), false)
    )
}

impl DirectorApi {
    /// The routes that authenticate themselves: a form upload (signed by its policy, not
    /// as a request) and the upload form page (any key that owns the bucket, not only
    /// admin keys as the other `/_dpyfs/` routes). None for every other request.
    pub(super) fn form_routes(
        &self,
        req: &mut Request<'_>,
        access: &Access,
        now_ms: u64,
    ) -> Option<(&'static str, Result<Response>)> {
        if is_form_post(req) {
            return Some(("post_object", self.post_object(req, now_ms)));
        }
        if req.path == "/_dpyfs/upload" && req.method == "GET" {
            return Some(("upload_form", self.upload_form(req, access, now_ms)));
        }
        None
    }

    /// Ok when `access` may write to `bucket`, as a PutObject would be checked.
    fn check_write(&self, access: &Access, bucket: &str) -> Result<()> {
        self.director.read_barrier()?;
        let owner = self
            .director
            .read_index()
            .buckets
            .get(bucket)
            .map(|b| b.owner.clone());
        access.check_bucket(bucket, owner.as_ref().map(Option::as_deref))
    }

    /// Ok when `access` may write a form's object into `bucket`: as a PutObject by the
    /// policy's key, or where the bucket's ACL grants WRITE (`acl::permits_write`; an
    /// unsigned form is anonymous, as S3 takes form uploads into a public-read-write
    /// bucket). `fields` carries the form's fields as headers.
    fn check_form_write(&self, access: &Access, bucket: &str, fields: &Request<'_>) -> Result<()> {
        let by_owner = self.check_write(access, bucket);
        if by_owner.is_err()
            && acl::permits_write(access, bucket, fields, &self.director.read_index())
        {
            return Ok(());
        }
        match access.principal {
            Principal::Anonymous => Err(DirectorError::S3(
                403,
                "AccessDenied",
                "a form upload to a director with keys needs a signed POST policy (the fields policy, x-amz-algorithm, x-amz-credential, x-amz-date and x-amz-signature), unless the bucket's ACL lets everyone write".into(),
            )),
            _ => by_owner,
        }
    }

    fn post_object(&self, req: &mut Request<'_>, now_ms: u64) -> Result<Response> {
        let bucket = match parse_target(&req.path)? {
            Target::Bucket(b) => b,
            _ => return Err(bad("InvalidArgument", "a form POST names a bucket")),
        };
        let boundary = match req.header("content-type").and_then(form::boundary) {
            Some(b) => b.map_err(form_error)?,
            None => {
                return Err(bad(
                    "InvalidArgument",
                    "the body is not multipart/form-data",
                ));
            }
        };
        let remote = req.remote;
        let path = req.path.clone();
        let host = req.header("host").map(str::to_string);
        let mut form = FormReader::new(&mut *req.body, &boundary);
        let fields = read_fields(&mut form)?;
        let mut empty = io::empty();
        let (access, policy) =
            form_signer(self, &stub_request(&path, remote, &mut empty), &fields)?;
        // The form's object fields as headers, for the checks and readers of PutObject.
        let meta_req = Request {
            headers: field_headers(&fields)?,
            ..stub_request(&path, remote, &mut empty)
        };
        let (key, min, max) = checked_key(&fields, policy.as_ref(), &bucket, now_ms)?;
        self.check_form_write(&access, &bucket, &meta_req)?;
        // The form's `acl` field, read as PutObject reads `x-amz-acl`.
        let acl = self.request_acl(&meta_req, &bucket)?;
        let new = NewObject {
            bucket: bucket.clone(),
            key: key.clone(),
            content_type: meta_req
                .header("content-type")
                .unwrap_or(CONTENT_TYPE_DEFAULT)
                .to_string(),
            meta: user_meta(&meta_req),
            headers: stored_headers(&meta_req),
            acl,
            ..NewObject::default()
        };
        let mut file = FileBody {
            form: &mut form,
            min,
            max,
            got: 0,
        };
        let mut body_req = stub_request(&path, remote, &mut file);
        let mut body = body::open(&mut body_req, None)?;
        let m = self.director.put_object(new, &mut body)?;
        self.post_answer(&fields, &bucket, &key, &m, host.as_deref())
    }

    /// The answer S3 gives a form upload: a redirect, a PostResponse document (201), or
    /// an empty 200/204 (the default), with the ETag and the version id.
    fn post_answer(
        &self,
        f: &Fields,
        bucket: &str,
        key: &str,
        m: &crate::director::meta::index::ObjectMeta,
        host: Option<&str>,
    ) -> Result<Response> {
        let location = format!(
            "{}://{}/{bucket}/{}",
            self.director.cfg.scheme(),
            host.unwrap_or("localhost"),
            percent_encode(key, true)
        );
        let redirect = f
            .get("success_action_redirect")
            .or_else(|| f.get("redirect"))
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"));
        let mut r = match (redirect, f.get("success_action_status")) {
            (Some(url), _) => Response::empty(303)
                .with_header("Location", redirect_url(url, bucket, key, &m.etag)),
            (None, Some("201")) => {
                let mut d = Doc::new("PostResponse");
                d.elem("Location", &location)
                    .elem("Bucket", bucket)
                    .elem("Key", key)
                    .elem("ETag", &format!("\"{}\"", m.etag));
                xml(201, d.finish("PostResponse")).with_header("Location", location)
            }
            (None, Some("200")) => Response::empty(200).with_header("Location", location),
            // S3 answers 204 for no or an unknown status.
            (None, _) => Response::empty(204).with_header("Location", location),
        };
        r = r.with_header("ETag", format!("\"{}\"", m.etag));
        Ok(with_version_id(r, self.versioning_of(bucket), m))
    }

    /// `GET /_dpyfs/upload?bucket=B`: an HTML form that uploads to B with a freshly signed
    /// policy (short expiry, the bucket fixed, any key, up to `UPLOAD_FORM_BYTES_MAX`).
    /// The request must be signed by a key that may write to B (a presigned URL will do,
    /// for a browser); an open director serves it to anyone. The page holds the policy's
    /// signature, never the secret key.
    fn upload_form(&self, req: &Request<'_>, access: &Access, now_ms: u64) -> Result<Response> {
        if access.principal == Principal::Anonymous {
            return Err(unsigned_denied());
        }
        let Some(bucket) = req.query_param("bucket") else {
            return self.bucket_choice(access);
        };
        match parse_target(&format!("/{}", percent_encode(&bucket, false)))? {
            Target::Bucket(_) => {}
            _ => return Err(DirectorError::InvalidBucketName(bucket)),
        }
        self.check_write(access, &bucket)?;
        self.director.read_index().bucket(&bucket)?;
        let mut fields: Vec<(&str, String)> = vec![("success_action_status", "201".into())];
        let mut conditions = vec![
            serde_json::json!({"bucket": bucket}),
            serde_json::json!(["starts-with", "$key", ""]),
            serde_json::json!({"success_action_status": "201"}),
            serde_json::json!(["content-length-range", 0, UPLOAD_FORM_BYTES_MAX]),
        ];
        let signer = access
            .key()
            .and_then(|k| self.auth.form_key(req, k).ok().flatten());
        let date = amz_date(now_ms);
        if let Some(key) = &signer {
            let scope = sigv4::Scope {
                date: date[..8].to_string(),
                region: REGION.into(),
                service: "s3".into(),
            };
            let credential = format!("{}/{}", key.access_key, scope.text());
            conditions.push(serde_json::json!({"x-amz-algorithm": sigv4::ALGORITHM}));
            conditions.push(serde_json::json!({"x-amz-credential": credential}));
            conditions.push(serde_json::json!({"x-amz-date": date}));
            fields.push(("x-amz-algorithm", sigv4::ALGORITHM.into()));
            fields.push(("x-amz-credential", credential));
            fields.push(("x-amz-date", date.clone()));
        }
        let policy = serde_json::json!({
            "expiration": iso8601(now_ms + UPLOAD_FORM_VALIDITY_SECS * 1000),
            "conditions": conditions,
        });
        let policy_b64 = crate::checksum::base64_encode(policy.to_string().as_bytes());
        if let Some(key) = &signer {
            let k = sigv4::signing_key(&key.secret_key, &date[..8], REGION, "s3");
            fields.push(("x-amz-signature", sigv4::signature(&k, &policy_b64)));
        }
        fields.push(("policy", policy_b64));
        let action = format!(
            "{}://{}/{}",
            self.director.cfg.scheme(),
            req.header("host").unwrap_or("localhost"),
            percent_encode(&bucket, false)
        );
        Ok(Response::text(
            200,
            "text/html; charset=utf-8",
            upload_page(&bucket, &action, &fields),
        )
        .with_header("Cache-Control", "no-store"))
    }
}

impl DirectorApi {
    /// The upload page without `?bucket=`: links to the buckets `access` may write (the
    /// status page links here, so nothing has to be typed on a page that reloads itself).
    fn bucket_choice(&self, access: &Access) -> Result<Response> {
        use crate::status_page::esc;
        self.director.read_barrier()?;
        let links: String = self
            .director
            .read_index()
            .buckets
            .iter()
            .filter(|(name, b)| access.may_touch(name, b.owner.as_deref()))
            .map(|(name, _)| {
                format!(
                    "<li><a href=\"?bucket={}\">{}</a></li>\n",
                    esc(&percent_encode(name, false)),
                    esc(name)
                )
            })
            .collect();
        let list = if links.is_empty() {
            "<p>No bucket to upload to: create one first.</p>".to_string()
        } else {
            format!("<ul>\n{links}</ul>")
        };
        Ok(Response::text(
            200,
            "text/html; charset=utf-8",
            format!(
                "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <title>Upload a file</title></head><body>\n\
                 <h1>Upload a file: choose a bucket</h1>\n{list}\n</body></html>\n"
            ),
        )
        .with_header("Cache-Control", "no-store"))
    }
}

/// A request with no headers and `body`, for the body reader and the header-based checks
/// a form's fields go through.
fn stub_request<'a>(
    path: &str,
    remote: Option<std::net::SocketAddr>,
    body: &'a mut dyn Read,
) -> Request<'a> {
    Request {
        method: "POST".into(),
        path: path.to_string(),
        query: String::new(),
        params: Default::default(),
        headers: Vec::new(),
        body,
        body_len: None,
        remote,
    }
}

/// The upload page: a form with the policy fields hidden, a key (default: the file's
/// name) and a file input.
fn upload_page(bucket: &str, action: &str, fields: &[(&str, String)]) -> String {
    use crate::status_page::esc;
    let hidden: String = fields
        .iter()
        .map(|(n, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                esc(n),
                esc(v)
            )
        })
        .collect();
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>Upload to {b}</title></head><body>\n\
         <h1>Upload to bucket {b}</h1>\n\
         <p>This form is valid for {mins} minutes and takes one file of up to {gib} GiB.</p>\n\
         <form id=\"upload\" action=\"{a}\" method=\"post\" enctype=\"multipart/form-data\">\n\
         {hidden}<label>Key <input type=\"text\" name=\"key\" value=\"${{filename}}\" size=\"60\"></label><br>\n\
         <label>File <input type=\"file\" name=\"file\"></label><br>\n\
         <button type=\"submit\">Upload</button>\n</form>\n</body></html>\n",
        b = esc(bucket),
        a = esc(action),
        mins = UPLOAD_FORM_VALIDITY_SECS / 60,
        gib = UPLOAD_FORM_BYTES_MAX >> 30,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(doc: &serde_json::Value) -> String {
        crate::checksum::base64_encode(doc.to_string().as_bytes())
    }

    #[test]
    fn expirations_parse() {
        let t = parse_amz_date("20261206T120000Z").unwrap();
        assert_eq!(parse_expiration("2026-12-06T12:00:00.000Z"), Some(t));
        assert_eq!(parse_expiration("2026-12-06T12:00:00Z"), Some(t));
        assert_eq!(parse_expiration("2026-12-06T12:00:00.5Z"), Some(t + 500));
        assert_eq!(parse_expiration("2026-12-06T12:00:00"), None);
        assert_eq!(parse_expiration("tomorrow"), None);
    }

    #[test]
    fn policies_parse_and_check() {
        let p = Policy::parse(&b64(&serde_json::json!({
            "expiration": "2026-12-06T12:00:00.000Z",
            "conditions": [
                {"bucket": "photos", "acl": "private"},
                ["starts-with", "$key", "user/"],
                ["eq", "$Content-Type", "image/png"],
                ["starts-with", "$x-amz-meta-tag", ""],
                ["content-length-range", 1, "1000"],
            ]
        })))
        .unwrap();
        assert_eq!(p.length_range(), Some((1, 1000)));
        let fields: BTreeMap<&str, &str> = [
            ("acl", "private"),
            ("key", "user/a.png"),
            ("content-type", "image/png"),
            ("x-amz-meta-tag", "x"),
            ("x-ignore-me", "y"),
            ("policy", "..."),
        ]
        .into_iter()
        .collect();
        let names: Vec<&str> = fields.keys().copied().collect();
        let now = parse_expiration("2026-12-06T11:00:00Z").unwrap();
        let value_of = |f: &BTreeMap<&str, &str>, n: &str| match n {
            "bucket" => "photos".to_string(),
            _ => f.get(n).copied().unwrap_or_default().to_string(),
        };
        p.check(now, &names, &|n| value_of(&fields, n)).unwrap();
        let msg = |r: Result<()>| match r {
            Err(DirectorError::S3(403, "AccessDenied", m)) => m,
            other => panic!("{other:?}"),
        };
        assert!(
            msg(p.check(now + 7_200_000, &names, &|n| value_of(&fields, n)))
                .contains("Policy expired")
        );
        let mut bad_key = fields.clone();
        bad_key.insert("key", "other/a.png");
        assert!(
            msg(p.check(now, &names, &|n| value_of(&bad_key, n)))
                .contains("[\"starts-with\", \"$key\", \"user/\"]")
        );
        let mut names_extra = names.clone();
        names_extra.push("x-amz-meta-other");
        assert!(
            msg(p.check(now, &names_extra, &|n| value_of(&fields, n)))
                .contains("Extra input fields: x-amz-meta-other")
        );
        for bad in [
            serde_json::json!({"conditions": []}),
            serde_json::json!({"expiration": "2026-12-06T12:00:00Z"}),
            serde_json::json!({"expiration": "2026-12-06T12:00:00Z", "conditions": [["in", "$a", "b"]]}),
            serde_json::json!({"expiration": "2026-12-06T12:00:00Z", "conditions": [["content-length-range", 5, 1]]}),
            serde_json::json!({"expiration": "2026-12-06T12:00:00Z", "conditions": [{"a": 1}]}),
        ] {
            assert!(
                matches!(
                    Policy::parse(&b64(&bad)),
                    Err(DirectorError::BadRequest("InvalidPolicyDocument", _))
                ),
                "{bad}"
            );
        }
        assert!(Policy::parse("not base64!").is_err());
    }

    #[test]
    fn keys_expand_the_file_name() {
        assert_eq!(expand_key("up/${filename}", Some("a.txt")), "up/a.txt");
        assert_eq!(
            expand_key("up/${filename}", Some("C:\\x\\b.txt")),
            "up/b.txt"
        );
        assert_eq!(expand_key("k", Some("a.txt")), "k");
        assert_eq!(
            redirect_url("http://h/done?x=1", "b", "a b", "e"),
            "http://h/done?x=1&bucket=b&key=a%20b&etag=%22e%22"
        );
    }
}
