//! Who may do what: the SigV4 verification every request goes through before it is routed
//! (`DirectorApi::handle`), against the keys of `crate::s3::keys`.
//!
//! Without a keys file the director is open: every request is served, signed or not (a
//! signature is not even checked; clients always sign). With one, a request must carry a
//! valid `Authorization: AWS4-HMAC-SHA256 ...` header or a presigned query (an unsigned
//! one gets only what an ACL grants everyone, acl.rs), and a key with a bucket list may
//! touch only those buckets. The outcome is an [`Access`], which
//! the handlers consult and which carries the signature chain of a signed streaming body.
//!
//! Secrets never reach a log line or an error message.

use super::body::SignatureChain;
use crate::director::error::{DirectorError, Result};
use crate::director::meta::acl::{Permission, Requester};
use crate::director::meta::index::ObjectMeta;
use crate::http::Request;
use crate::s3::keys::{KeyEntry, Keys};
use crate::sigv4::{self, Scope};
use crate::timefmt::{amz_date, parse_amz_date, parse_http_date};
use std::path::Path;

/// Largest difference between the request's date and the director's clock (as S3).
pub const CLOCK_SKEW_MAX_SECS: u64 = 15 * 60;
// ---------------------------------------------------------------------------------------
// The signature chain of a signed aws-chunked body.

/// The chain of one request: its signing key (derived, not the secret), date, scope, and
/// the last signature handed out.
struct Chain {
    key: [u8; 32],
    datetime: String,
    scope: Scope,
    previous: String,
}

impl SignatureChain for Chain {
    fn chunk(&mut self, data_sha256_hex: &str) -> String {
        let s = sigv4::chunk_signature(
            &self.key,
            &self.datetime,
            &self.scope,
            &self.previous,
            data_sha256_hex,
        );
        self.previous = s.clone();
        s
    }

    fn trailer(&mut self, trailer_sha256_hex: &str) -> String {
        let s = sigv4::trailer_signature(
            &self.key,
            &self.datetime,
            &self.scope,
            &self.previous,
            trailer_sha256_hex,
        );
        self.previous = s.clone();
        s
    }
}

// ---------------------------------------------------------------------------------------
// What a request may do.

/// Who sent a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// No keys file: everything is open.
    Open,
    /// Keys are configured and the request is not signed.
    Anonymous,
    /// A verified key: an admin key touches every bucket and the admin routes; a key
    /// with a bucket list only those; any other only the buckets it owns.
    Key {
        access_key: String,
        buckets: Option<Vec<String>>,
        admin: bool,
    },
}

/// The result of verification, available to every handler.
pub struct Access {
    pub principal: Principal,
    /// For a signed streaming body (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`): the
    /// chain its chunk signatures must follow. Taken by whoever reads the body.
    pub chain: Option<Box<dyn SignatureChain>>,
}

fn access_denied(msg: impl Into<String>) -> DirectorError {
    DirectorError::S3(403, "AccessDenied", msg.into())
}

impl Access {
    pub fn open() -> Access {
        Access {
            principal: Principal::Open,
            chain: None,
        }
    }

    /// Who sent the request, as ACLs see it (None: no keys file, everything is open).
    pub fn requester(&self) -> Option<Requester<'_>> {
        match &self.principal {
            Principal::Open => None,
            Principal::Anonymous => Some(Requester::Anonymous),
            Principal::Key { access_key, .. } => Some(Requester::Key(access_key)),
        }
    }

    /// Ok when the ACL of version `m` grants `p` to this requester, else 403: the check
    /// an ACL-let-through request makes again on the version it finally takes, which may
    /// be newer than the one `acl::permits` judged (an overwrite in between). `whose`
    /// names the object in the message ("the object's", "the copy source's").
    pub fn check_version_acl(&self, m: &ObjectMeta, p: Permission, whose: &str) -> Result<()> {
        if self.requester().is_none_or(|who| m.acl.allows(who, p)) {
            return Ok(());
        }
        Err(access_denied(format!(
            "{whose} ACL does not grant {}",
            p.as_str()
        )))
    }

    /// The access key id, if the request was signed by a known key.
    pub fn key(&self) -> Option<&str> {
        match &self.principal {
            Principal::Key { access_key, .. } => Some(access_key),
            _ => None,
        }
    }

    /// Whether bucket `b`, owned by `owner` (None: the admin keys'), may be seen and
    /// touched (listings of buckets use this).
    pub fn may_touch(&self, b: &str, owner: Option<&str>) -> bool {
        match &self.principal {
            Principal::Open => true,
            Principal::Anonymous => false,
            Principal::Key { admin: true, .. } => true,
            Principal::Key {
                buckets: Some(list),
                ..
            } => list.iter().any(|x| x == b),
            Principal::Key { access_key, .. } => owner == Some(access_key.as_str()),
        }
    }

    /// Ok when bucket `b` may be touched, else 403 AccessDenied. `owner` is None for a
    /// bucket that does not exist: any key that may create buckets is let through (the
    /// handler answers NoSuchBucket, or creates it); a key with a bucket list only to
    /// its buckets.
    pub fn check_bucket(&self, b: &str, owner: Option<Option<&str>>) -> Result<()> {
        let allowed = match (&self.principal, owner) {
            (Principal::Anonymous, _) => return Err(unsigned_denied()),
            (Principal::Key { buckets: None, .. }, None) => true,
            (_, owner) => self.may_touch(b, owner.flatten()),
        };
        match &self.principal {
            Principal::Key { access_key, .. } if !allowed => Err(access_denied(format!(
                "the key {access_key} may not touch the bucket '{b}' (it belongs to another key)"
            ))),
            _ => Ok(()),
        }
    }

    /// Ok for requests that need any valid signature (listing the buckets).
    pub fn check_signed(&self) -> Result<()> {
        match self.principal {
            Principal::Anonymous => Err(unsigned_denied()),
            _ => Ok(()),
        }
    }

    /// Ok for the cluster routes (`/_dpyfs/...`): open director, or an admin key.
    pub fn check_admin(&self) -> Result<()> {
        match &self.principal {
            Principal::Open | Principal::Key { admin: true, .. } => Ok(()),
            Principal::Anonymous => Err(unsigned_denied()),
            Principal::Key { access_key, .. } => Err(access_denied(format!(
                "the key {access_key} is not an admin key; cluster routes need one (dpyfs admin key create --admin)"
            ))),
        }
    }
}

pub(super) fn unsigned_denied() -> DirectorError {
    access_denied("this director requires signed requests (AWS Signature Version 4)")
}

// ---------------------------------------------------------------------------------------
// Verification.

/// The director's authenticator: open (no keys) or keyed.
pub struct Auth {
    keys: Option<Keys>,
}

fn malformed(msg: impl Into<String>) -> DirectorError {
    DirectorError::BadRequest("AuthorizationHeaderMalformed", msg.into())
}

fn query_error(msg: impl Into<String>) -> DirectorError {
    DirectorError::BadRequest("AuthorizationQueryParametersError", msg.into())
}

pub(super) fn signature_mismatch() -> DirectorError {
    DirectorError::S3(
        403,
        "SignatureDoesNotMatch",
        "the request signature we calculated does not match the signature you provided; check your secret key and signing method".into(),
    )
}

/// What both forms of signed request (header, presigned query) have in common.
struct Claim<'a> {
    access_key: String,
    scope: Scope,
    /// The request time as signed (`20130524T000000Z`), and in unix milliseconds.
    datetime: String,
    time_ms: u64,
    signed_headers: Vec<String>,
    signature: String,
    /// Payload hashes to try: the header's value, or what clients sign without one.
    payloads: Vec<&'a str>,
    /// A presigned URL: its expiry replaces the clock-skew check, and its query's
    /// X-Amz-Signature is not covered by the signature.
    presigned: bool,
}

impl Auth {
    /// No keys: every request is served.
    pub fn open() -> Auth {
        Auth { keys: None }
    }

    pub fn with_keys(keys: Keys) -> Auth {
        Auth { keys: Some(keys) }
    }

    /// `--keys FILE` given or not.
    pub fn from_path(path: Option<&Path>) -> std::result::Result<Auth, String> {
        match path {
            None => Ok(Auth::open()),
            Some(p) => Ok(Auth::with_keys(Keys::load(p)?)),
        }
    }

    pub fn is_open(&self) -> bool {
        self.keys.is_none()
    }

    /// Whether `id` is the access key id of one of this director's keys (the grantees
    /// an ACL may name).
    pub fn knows(&self, id: &str) -> bool {
        self.keys.as_ref().is_some_and(|k| k.get(id).is_some())
    }

    /// Verifies the request's signature, if it needs one. An unsigned request on a keyed
    /// director is `Principal::Anonymous` (the routes decide what it may see); a request
    /// that tries to sign and fails is an error.
    pub fn verify(&self, req: &Request<'_>, now_ms: u64) -> Result<Access> {
        self.verify_inner(req, now_ms, None)
    }

    /// `verify` for a request whose body has been read (see `body_hash_may_be_signed`):
    /// the body's own hash is tried as the signed payload too.
    pub fn verify_with_body_hash(
        &self,
        req: &Request<'_>,
        now_ms: u64,
        body_sha256_hex: &str,
    ) -> Result<Access> {
        self.verify_inner(req, now_ms, Some(body_sha256_hex))
    }

    fn verify_inner<'r>(
        &self,
        req: &'r Request<'_>,
        now_ms: u64,
        body_hash: Option<&'r str>,
    ) -> Result<Access> {
        let Some(keys) = &self.keys else {
            return Ok(Access::open());
        };
        let header = req.header("authorization");
        let presigned = req.query_param("X-Amz-Algorithm").is_some()
            || req.query_param("X-Amz-Signature").is_some();
        if header.is_none() && !presigned && req.query_param("AWSAccessKeyId").is_some() {
            return verify_v2_presigned(keys, req, now_ms);
        }
        let claim = match (header, presigned) {
            (None, false) => {
                return Ok(Access {
                    principal: Principal::Anonymous,
                    chain: None,
                });
            }
            (Some(_), true) => {
                return Err(DirectorError::BadRequest(
                    "InvalidArgument",
                    "only one auth mechanism allowed: an Authorization header or X-Amz-* query parameters".into(),
                ));
            }
            (Some(h), false) => {
                let mut c = header_claim(req, h)?;
                if req.header("x-amz-content-sha256").is_none() {
                    c.payloads.extend(body_hash);
                }
                c
            }
            (None, true) => query_claim(req, now_ms)?,
        };
        check_claim(&claim, now_ms)?;
        let key = known_key(keys, req, &claim.access_key)?;
        verify_signature(req, &claim, key)
    }

    /// The key a browser form's POST policy names (POST Object, post_object.rs), which
    /// signs the policy rather than the request: None on an open director, else the key
    /// or 403 InvalidAccessKeyId.
    pub(super) fn form_key(&self, req: &Request<'_>, access_key: &str) -> Result<Option<KeyEntry>> {
        match &self.keys {
            None => Ok(None),
            Some(keys) => known_key(keys, req, access_key).map(Some),
        }
    }
}

/// What a claim says of itself that must hold before any key is looked up: the service,
/// a signed `host`, a date that matches the scope's, and (unless presigned) a time
/// within the clock skew.
fn check_claim(claim: &Claim<'_>, now_ms: u64) -> Result<()> {
    if claim.scope.service != "s3" {
        return Err(malformed(format!(
            "the credential names the service '{}'; this endpoint is 's3'",
            claim.scope.service
        )));
    }
    if !claim.signed_headers.iter().any(|h| h == "host") {
        return Err(malformed("the host header must be signed"));
    }
    if claim.datetime.get(..8) != Some(claim.scope.date.as_str()) {
        return Err(malformed(format!(
            "the credential date {} is not the request's date {}",
            claim.scope.date, claim.datetime
        )));
    }
    let skew_ms = CLOCK_SKEW_MAX_SECS * 1000;
    if claim.time_ms.abs_diff(now_ms) > skew_ms && !claim.presigned {
        return Err(DirectorError::S3(
            403,
            "RequestTimeTooSkewed",
            format!(
                "the request time {} differs from the director's time {} by more than {} minutes",
                claim.datetime,
                amz_date(now_ms),
                CLOCK_SKEW_MAX_SECS / 60
            ),
        ));
    }
    Ok(())
}

/// The key the claim names, or `InvalidAccessKeyId` (logged with the id, never a secret).
fn known_key(keys: &Keys, req: &Request<'_>, access_key: &str) -> Result<KeyEntry> {
    keys.get(access_key).ok_or_else(|| {
        log::info!(
            "refused {} {}: unknown access key {access_key}",
            req.method,
            req.path,
        );
        DirectorError::S3(
            403,
            "InvalidAccessKeyId",
            format!("the access key id {access_key} is not known to this director"),
        )
    })
}

/// Checks the signature with `key` and every `x-amz-*` header being signed; the access
/// it grants carries the chain a signed streaming body continues.
fn verify_signature(req: &Request<'_>, claim: &Claim<'_>, key: KeyEntry) -> Result<Access> {
    let signing_key = sigv4::signing_key(
        &key.secret_key,
        &claim.scope.date,
        &claim.scope.region,
        &claim.scope.service,
    );
    let Some(payload) = matching_payload(req, claim, &signing_key) else {
        log::info!(
            "refused {} {}: signature mismatch for key {}",
            req.method,
            req.path,
            claim.access_key
        );
        return Err(signature_mismatch());
    };
    check_amz_headers_signed(req, &claim.signed_headers)?;
    let chain: Option<Box<dyn SignatureChain>> = match payload {
        sigv4::STREAMING_PAYLOAD | sigv4::STREAMING_PAYLOAD_TRAILER => Some(Box::new(Chain {
            key: signing_key,
            datetime: claim.datetime.clone(),
            scope: claim.scope.clone(),
            previous: claim.signature.clone(),
        })),
        _ => None,
    };
    Ok(Access {
        chain,
        ..key_access(key)
    })
}

/// What a verified key may do (no streaming chain).
pub(super) fn key_access(key: KeyEntry) -> Access {
    Access {
        principal: Principal::Key {
            admin: key.is_admin(),
            access_key: key.access_key,
            buckets: key.buckets,
        },
        chain: None,
    }
}

/// S3's rule: every `x-amz-*` header a request carries is covered by its signature (issue
/// 18, item 2). Without it, whoever holds a presigned PUT URL (or replays a captured
/// UNSIGNED-PAYLOAD PUT within the clock skew) could add `x-amz-copy-source` and turn the
/// PUT into a copy of an object the signer never meant to share, or add metadata, ACL,
/// checksum or condition headers the signer did not choose. Version 2 presigned URLs
/// sign every `x-amz-*` header in their string to sign, so they need no such check.
fn check_amz_headers_signed(req: &Request<'_>, signed: &[String]) -> Result<()> {
    let mut unsigned: Vec<&str> = req
        .headers
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| name.starts_with("x-amz-") && !signed.iter().any(|s| s == name))
        .collect();
    if unsigned.is_empty() {
        return Ok(());
    }
    unsigned.sort_unstable();
    unsigned.dedup();
    log::info!(
        "refused {} {}: x-amz-* headers not covered by the signature: {}",
        req.method,
        req.path,
        unsigned.join(", ")
    );
    Err(access_denied(format!(
        "There were headers present in the request which were not signed: {}",
        unsigned.join(", ")
    )))
}

/// A Signature Version 2 presigned URL (`?AWSAccessKeyId=..&Expires=..&Signature=..`), which
/// boto3 and aws-cli v1 still make by default (`generate_presigned_url`, `aws s3 presign`).
/// Only this form of version 2 is accepted: an `Authorization: AWS ...` header is refused.
fn verify_v2_presigned(keys: &Keys, req: &Request<'_>, now_ms: u64) -> Result<Access> {
    let param = |name: &str| {
        req.query_param(name)
            .ok_or_else(|| query_error(format!("the query parameter {name} is missing")))
    };
    let access_key = param("AWSAccessKeyId")?;
    let expires_text = param("Expires")?;
    let signature = param("Signature")?;
    let expires: u64 = expires_text.parse().map_err(|_| {
        query_error(format!(
            "Expires {expires_text:?} is not a number of seconds since 1970"
        ))
    })?;
    if now_ms / 1000 > expires {
        return Err(access_denied(format!(
            "the presigned URL expired at {} (unix seconds {expires})",
            amz_date(expires.saturating_mul(1000))
        )));
    }
    if expires > now_ms / 1000 + sigv4::PRESIGN_EXPIRES_MAX_SECS {
        return Err(query_error(format!(
            "a presigned URL may be valid for 7 days at most (Expires {expires})"
        )));
    }
    let Some(key) = keys.get(&access_key) else {
        return Err(DirectorError::S3(
            403,
            "InvalidAccessKeyId",
            format!("the access key id {access_key} is not known to this director"),
        ));
    };
    let sts = sigv4::v2_string_to_sign(
        &req.method,
        &req.path,
        &req.query,
        &req.headers,
        &expires_text,
    );
    let want = crate::checksum::base64_encode(&sigv4::hmac_sha1(
        key.secret_key.as_bytes(),
        sts.as_bytes(),
    ));
    if !sigv4::same_signature(&want, &signature) {
        log::info!(
            "refused {} {}: version 2 signature mismatch for key {access_key}",
            req.method,
            req.path
        );
        return Err(signature_mismatch());
    }
    Ok(Access {
        principal: Principal::Key {
            admin: key.is_admin(),
            access_key: key.access_key,
            buckets: key.buckets,
        },
        chain: None,
    })
}

/// The payload value of `x-amz-content-sha256`, checked.
fn payload_header<'r>(req: &'r Request<'_>) -> Result<Option<&'r str>> {
    let Some(v) = req.header("x-amz-content-sha256") else {
        return Ok(None);
    };
    let hex = v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit());
    match v {
        _ if hex => Ok(Some(v)),
        sigv4::UNSIGNED_PAYLOAD
        | sigv4::STREAMING_PAYLOAD
        | sigv4::STREAMING_PAYLOAD_TRAILER
        | sigv4::STREAMING_UNSIGNED_TRAILER => Ok(Some(v)),
        _ if v.starts_with("STREAMING-") => Err(DirectorError::NotImplemented(format!(
            "x-amz-content-sha256 {v}"
        ))),
        _ => Err(DirectorError::BadRequest(
            "InvalidArgument",
            "x-amz-content-sha256 must be a hex SHA-256, UNSIGNED-PAYLOAD or STREAMING-...".into(),
        )),
    }
}

/// The payload hashes a request without `x-amz-content-sha256` may have signed. S3 wants
/// the header, but curl's `--aws-sigv4` (7.88) does not send it: it signs the hash of the
/// empty string when the body is not in memory (GET, DELETE, `-T FILE`), or the body's
/// own hash for `--data`. These two are tried first, and the payload is then unverified,
/// as with UNSIGNED-PAYLOAD (docs/ARCHITECTURE.md); a small body's own hash is tried after
/// them by `verify_with_body_hash`.
const PAYLOADS_WITHOUT_HEADER: &[&str] = &[sigv4::EMPTY_SHA256, sigv4::UNSIGNED_PAYLOAD];

/// Largest body read to try its hash as the signed payload (see
/// `body_hash_may_be_signed`).
pub const SIGNED_BODY_BYTES_MAX: u64 = 1024 * 1024;

/// True when a request refused with `e` may have signed its body's own hash without
/// sending it (curl's `--aws-sigv4` with `--data`): a header signature that did not match,
/// no `x-amz-content-sha256`, and a body of known length up to `SIGNED_BODY_BYTES_MAX`.
/// The caller may then read the body and call `verify_with_body_hash`.
pub fn body_hash_may_be_signed(req: &Request<'_>, e: &DirectorError) -> bool {
    matches!(e, DirectorError::S3(_, "SignatureDoesNotMatch", _))
        && req.header("authorization").is_some()
        && req.header("x-amz-content-sha256").is_none()
        && req
            .body_len
            .is_some_and(|n| n > 0 && n <= SIGNED_BODY_BYTES_MAX)
}

fn header_claim<'r>(req: &'r Request<'_>, h: &str) -> Result<Claim<'r>> {
    if !h.starts_with(sigv4::ALGORITHM) {
        return Err(DirectorError::BadRequest(
            "InvalidRequest",
            format!(
                "the authorization mechanism is not supported; use {}",
                sigv4::ALGORITHM
            ),
        ));
    }
    let a = sigv4::parse_auth_header(h).map_err(malformed)?;
    let (datetime, time_ms) = match req.header("x-amz-date") {
        Some(d) => {
            let ms = parse_amz_date(d.trim()).ok_or_else(|| {
                access_denied(format!(
                    "x-amz-date {d:?} is not of the form 20130524T000000Z"
                ))
            })?;
            (d.trim().to_string(), ms)
        }
        None => {
            let ms = req
                .header("date")
                .and_then(parse_http_date)
                .ok_or_else(|| {
                    access_denied("AWS authentication requires a valid Date or x-amz-date header")
                })?;
            (amz_date(ms), ms)
        }
    };
    let payloads = match payload_header(req)? {
        Some(p) => vec![p],
        None => PAYLOADS_WITHOUT_HEADER.to_vec(),
    };
    Ok(Claim {
        access_key: a.access_key,
        scope: a.scope,
        datetime,
        time_ms,
        signed_headers: a.signed_headers,
        signature: a.signature,
        payloads,
        presigned: false,
    })
}

fn query_claim<'r>(req: &'r Request<'_>, now_ms: u64) -> Result<Claim<'r>> {
    let param = |name: &str| {
        req.query_param(name)
            .ok_or_else(|| query_error(format!("the query parameter {name} is missing")))
    };
    let alg = param("X-Amz-Algorithm")?;
    if alg != sigv4::ALGORITHM {
        return Err(query_error(format!(
            "X-Amz-Algorithm {alg:?} is not {}",
            sigv4::ALGORITHM
        )));
    }
    let (access_key, scope) = sigv4::parse_credential(&param("X-Amz-Credential")?)
        .map_err(|e| query_error(format!("X-Amz-Credential: {e}")))?;
    let datetime = param("X-Amz-Date")?;
    let time_ms = parse_amz_date(&datetime).ok_or_else(|| {
        query_error(format!(
            "X-Amz-Date {datetime:?} is not of the form 20130524T000000Z"
        ))
    })?;
    let expires = param("X-Amz-Expires")?;
    let expires = expires
        .parse::<u64>()
        .ok()
        .filter(|e| (1..=sigv4::PRESIGN_EXPIRES_MAX_SECS).contains(e))
        .ok_or_else(|| {
            query_error(format!(
                "X-Amz-Expires must be a number of seconds from 1 to {} (7 days)",
                sigv4::PRESIGN_EXPIRES_MAX_SECS
            ))
        })?;
    let signed_headers = sigv4::parse_signed_headers(&param("X-Amz-SignedHeaders")?)
        .map_err(|e| query_error(format!("X-Amz-SignedHeaders: {e}")))?;
    let signature =
        sigv4::parse_query_signature(&param("X-Amz-Signature")?).map_err(query_error)?;
    if now_ms > time_ms + expires * 1000 {
        return Err(access_denied(format!(
            "the presigned URL expired (signed at {datetime}, valid {expires} s)"
        )));
    }
    if time_ms > now_ms + CLOCK_SKEW_MAX_SECS * 1000 {
        return Err(access_denied(format!(
            "the presigned URL is not valid yet (signed for {datetime})"
        )));
    }
    let payloads = match payload_header(req)? {
        Some(p) => vec![p],
        None => vec![sigv4::UNSIGNED_PAYLOAD],
    };
    Ok(Claim {
        access_key,
        scope,
        datetime,
        time_ms,
        signed_headers,
        signature,
        payloads,
        presigned: true,
    })
}

/// The raw query without the pairs named in `skip`, as a client that signs the query as
/// it sends it would have signed it.
fn raw_query_without(query: &str, skip: &[&str]) -> String {
    query
        .split('&')
        .filter(|p| {
            let name = p.split_once('=').map_or(*p, |(k, _)| k);
            !skip.contains(&name)
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Tries the canonical forms the signature may cover and returns the payload value that
/// matched. The path and query are tried canonical (as the AWS SDKs sign) and as sent
/// (curl 7.88 signs them unsorted and unnormalised); both name exactly this request.
fn matching_payload<'c>(req: &Request<'_>, claim: &Claim<'c>, key: &[u8; 32]) -> Option<&'c str> {
    let headers = sigv4::canonical_headers(&req.headers, &claim.signed_headers)?;
    let skip: &[&str] = if claim.presigned {
        &["X-Amz-Signature"]
    } else {
        &[]
    };
    let mut uris = vec![sigv4::canonical_uri(&req.path)];
    if uris[0] != req.path && !req.path.is_empty() {
        uris.push(req.path.clone());
    }
    let mut queries = vec![sigv4::canonical_query(&req.query, skip)];
    let raw = raw_query_without(&req.query, skip);
    if raw != queries[0] {
        queries.push(raw);
    }
    for payload in &claim.payloads {
        for uri in &uris {
            for query in &queries {
                let creq = sigv4::CanonicalRequest {
                    method: &req.method,
                    uri,
                    query,
                    headers: &headers,
                    signed_headers: &claim.signed_headers,
                    payload,
                }
                .text();
                let sts = sigv4::string_to_sign(&claim.datetime, &claim.scope, &creq);
                if sigv4::same_signature(&sigv4::signature(key, &sts), &claim.signature) {
                    return Some(payload);
                }
                log::debug!("canonical request tried:\n{creq}");
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::keys::tests::{entry, keys_file, scratch};
    use crate::sigv4::Credentials;

    const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const T: u64 = 1_369_353_600_000; // 20130524T000000Z

    fn auth(dir: &Path) -> Auth {
        let p = keys_file(
            dir,
            vec![
                entry(AKID, SECRET, None),
                entry("LIMITED", "limitedsecret", Some(&["photos"])),
                KeyEntry {
                    admin: Some(false),
                    ..entry("OWNER", "ownersecret", None)
                },
            ],
        );
        Auth::from_path(Some(&p)).unwrap()
    }

    struct Req {
        method: String,
        path: String,
        query: String,
        headers: Vec<(String, String)>,
    }

    impl Req {
        fn verify(&self, a: &Auth, now: u64) -> Result<Access> {
            let mut empty = std::io::empty();
            let r = Request {
                method: self.method.clone(),
                path: self.path.clone(),
                query: self.query.clone(),
                params: Default::default(),
                headers: self.headers.clone(),
                body: &mut empty,
                body_len: None,
                remote: None,
            };
            a.verify(&r, now)
        }
    }

    fn signed(method: &str, path: &str, query: &str, key: &str, secret: &str, at: u64) -> Req {
        let creds = Credentials {
            access_key: key.into(),
            secret_key: secret.into(),
        };
        let mut headers = sigv4::sign_headers(
            &creds,
            "eu-central-1",
            method,
            path,
            query,
            "dpyfs.local:7070",
            &[],
            sigv4::UNSIGNED_PAYLOAD,
            at / 1000,
        );
        headers.push(("host".into(), "dpyfs.local:7070".into()));
        Req {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers,
        }
    }

    fn code(r: Result<Access>) -> &'static str {
        match r {
            Ok(_) => "ok",
            Err(e) => e.status_and_code().1,
        }
    }

    #[test]
    fn the_aws_get_example_verifies_and_tampering_does_not() {
        let d = scratch("example");
        let a = auth(&d);
        let mut r = Req {
            method: "GET".into(),
            path: "/test.txt".into(),
            query: String::new(),
            headers: vec![
                ("host".into(), "examplebucket.s3.amazonaws.com".into()),
                ("range".into(), "bytes=0-9".into()),
                ("x-amz-content-sha256".into(), sigv4::EMPTY_SHA256.into()),
                ("x-amz-date".into(), "20130524T000000Z".into()),
                ("authorization".into(), "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41".into()),
            ],
        };
        let ok = r.verify(&a, T + 60_000).unwrap();
        assert_eq!(ok.key(), Some(AKID));
        assert!(ok.chain.is_none());
        r.headers[1].1 = "bytes=0-10".into();
        assert_eq!(code(r.verify(&a, T)), "SignatureDoesNotMatch");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn the_aws_streaming_example_gives_its_chunk_chain() {
        let d = scratch("stream");
        let a = auth(&d);
        let r = Req {
            method: "PUT".into(),
            path: "/examplebucket/chunkObject.txt".into(),
            query: String::new(),
            headers: vec![
                ("host".into(), "s3.amazonaws.com".into()),
                ("x-amz-date".into(), "20130524T000000Z".into()),
                ("x-amz-storage-class".into(), "REDUCED_REDUNDANCY".into()),
                ("authorization".into(), "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9".into()),
                ("x-amz-content-sha256".into(), sigv4::STREAMING_PAYLOAD.into()),
                ("content-encoding".into(), "aws-chunked".into()),
                ("x-amz-decoded-content-length".into(), "66560".into()),
                ("content-length".into(), "66824".into()),
            ],
        };
        let mut acc = r.verify(&a, T).unwrap();
        let mut chain = acc.chain.take().expect("a chain for a signed stream");
        assert_eq!(
            chain.chunk(&sigv4::sha256_hex(&[b'a'; 65536])),
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
        );
        assert_eq!(
            chain.chunk(&sigv4::sha256_hex(&[b'a'; 1024])),
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
        );
        assert_eq!(
            chain.chunk(sigv4::EMPTY_SHA256),
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
        );
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn refusals_have_their_codes() {
        let d = scratch("refusals");
        let a = auth(&d);
        let now = T;
        let good = signed("GET", "/photos/a b.jpg", "", AKID, SECRET, now);
        assert_eq!(code(good.verify(&a, now)), "ok");
        // Any region is accepted; the scope comes from the credential.
        assert!(
            good.headers
                .iter()
                .any(|(_, v)| v.contains("/eu-central-1/s3/"))
        );
        let wrong = signed("GET", "/photos/x", "", AKID, "not the secret", now);
        assert_eq!(code(wrong.verify(&a, now)), "SignatureDoesNotMatch");
        let unknown = signed("GET", "/photos/x", "", "NOSUCHKEY", SECRET, now);
        assert_eq!(code(unknown.verify(&a, now)), "InvalidAccessKeyId");
        let old = signed("GET", "/photos/x", "", AKID, SECRET, now - 16 * 60_000);
        assert_eq!(code(old.verify(&a, now)), "RequestTimeTooSkewed");
        let future = signed("GET", "/photos/x", "", AKID, SECRET, now + 16 * 60_000);
        assert_eq!(code(future.verify(&a, now)), "RequestTimeTooSkewed");
        let near = signed("GET", "/photos/x", "", AKID, SECRET, now - 14 * 60_000);
        assert_eq!(code(near.verify(&a, now)), "ok");
        // Method, path and query are covered.
        let mut m = signed("GET", "/photos/x", "a=1", AKID, SECRET, now);
        m.method = "DELETE".into();
        assert_eq!(code(m.verify(&a, now)), "SignatureDoesNotMatch");
        let mut p = signed("GET", "/photos/x", "a=1", AKID, SECRET, now);
        p.path = "/photos/y".into();
        assert_eq!(code(p.verify(&a, now)), "SignatureDoesNotMatch");
        let mut q = signed("GET", "/photos/x", "a=1", AKID, SECRET, now);
        q.query = "a=2".into();
        assert_eq!(code(q.verify(&a, now)), "SignatureDoesNotMatch");
        // Malformed headers are 400s.
        let mut bad = signed("GET", "/photos/x", "", AKID, SECRET, now);
        for (k, v) in bad.headers.iter_mut() {
            if k == "authorization" {
                *v = v.replace("Signature=", "Sig=");
            }
        }
        assert_eq!(code(bad.verify(&a, now)), "AuthorizationHeaderMalformed");
        let mut v2 = signed("GET", "/photos/x", "", AKID, SECRET, now);
        v2.headers.retain(|(k, _)| k != "authorization");
        v2.headers
            .push(("authorization".into(), "AWS AKID:c2lnbmF0dXJl".into()));
        assert_eq!(code(v2.verify(&a, now)), "InvalidRequest");
        let mut nodate = signed("GET", "/photos/x", "", AKID, SECRET, now);
        nodate.headers.retain(|(k, _)| k != "x-amz-date");
        assert_eq!(code(nodate.verify(&a, now)), "AccessDenied");
        // Unsigned: anonymous, decided by the routes.
        let anon = Req {
            method: "GET".into(),
            path: "/photos/x".into(),
            query: String::new(),
            headers: vec![("host".into(), "h".into())],
        };
        let acc = anon.verify(&a, now).unwrap();
        assert_eq!(acc.principal, Principal::Anonymous);
        assert_eq!(
            acc.check_bucket("photos", Some(None))
                .unwrap_err()
                .status_and_code()
                .1,
            "AccessDenied"
        );
        // An open director does not look at signatures at all.
        assert_eq!(code(wrong.verify(&Auth::open(), now)), "ok");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn without_x_amz_content_sha256_the_empty_hash_or_unsigned_is_accepted() {
        // What curl --aws-sigv4 7.88 does: it signs the empty hash and sends no header.
        let d = scratch("curl");
        let a = auth(&d);
        // sign_headers always signs the header; curl does not: sign by hand as curl does.
        let signed_names = vec!["host".to_string(), "x-amz-date".to_string()];
        let hdrs = vec![
            ("host".to_string(), "h".to_string()),
            ("x-amz-date".to_string(), amz_date(T)),
        ];
        let creq = sigv4::CanonicalRequest {
            method: "PUT",
            uri: "/photos/f",
            query: "b=1&a=2",
            headers: &sigv4::canonical_headers(&hdrs, &signed_names).unwrap(),
            signed_headers: &signed_names,
            payload: sigv4::EMPTY_SHA256,
        }
        .text();
        let scope = Scope {
            date: "20130524".into(),
            region: "us-east-1".into(),
            service: "s3".into(),
        };
        let key = sigv4::signing_key(SECRET, "20130524", "us-east-1", "s3");
        let sig = sigv4::signature(&key, &sigv4::string_to_sign(&amz_date(T), &scope, &creq));
        let mut all = hdrs.clone();
        all.push((
            "authorization".into(),
            format!(
                "AWS4-HMAC-SHA256 Credential={AKID}/{}, SignedHeaders=host;x-amz-date, Signature={sig}",
                scope.text()
            ),
        ));
        // The query was signed as sent (unsorted): accepted through the raw fallback.
        let r = Req {
            method: "PUT".into(),
            path: "/photos/f".into(),
            query: "b=1&a=2".into(),
            headers: all,
        };
        assert_eq!(code(r.verify(&a, T)), "ok");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn presigned_urls_verify_until_they_expire() {
        let d = scratch("presign");
        let a = auth(&d);
        let creds = Credentials {
            access_key: AKID.into(),
            secret_key: SECRET.into(),
        };
        let q = sigv4::presign_query(
            &creds,
            "us-east-1",
            "GET",
            "/photos/x",
            "h:1",
            600,
            T / 1000,
        );
        let r = Req {
            method: "GET".into(),
            path: "/photos/x".into(),
            query: q.clone(),
            headers: vec![("host".into(), "h:1".into())],
        };
        assert_eq!(code(r.verify(&a, T + 599_000)), "ok");
        assert_eq!(code(r.verify(&a, T + 601_000)), "AccessDenied");
        let mut put = Req {
            method: "PUT".into(),
            ..r
        };
        assert_eq!(code(put.verify(&a, T)), "SignatureDoesNotMatch");
        put.method = "GET".into();
        put.query = q.replace("X-Amz-Expires=600", "X-Amz-Expires=604801");
        assert_eq!(code(put.verify(&a, T)), "AuthorizationQueryParametersError");
        put.query = q.replace("X-Amz-Expires=600", "X-Amz-Expires=6000");
        assert_eq!(code(put.verify(&a, T)), "SignatureDoesNotMatch");
        put.query = q.replace("&X-Amz-Date=", "&X-Amz-Nothing=");
        assert_eq!(code(put.verify(&a, T)), "AuthorizationQueryParametersError");
        put.headers
            .push(("authorization".into(), "AWS4-HMAC-SHA256 x".into()));
        put.query = q;
        assert_eq!(code(put.verify(&a, T)), "InvalidArgument");
        std::fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn bucket_lists_limit_a_key() {
        let d = scratch("buckets");
        let a = auth(&d);
        let r = signed("GET", "/photos/x", "", "LIMITED", "limitedsecret", T);
        let acc = r.verify(&a, T).unwrap();
        assert!(acc.check_bucket("photos", Some(Some("OWNER"))).is_ok());
        assert!(acc.check_bucket("photos", None).is_ok());
        // Neither another bucket, nor creating one.
        for owner in [Some(Some("LIMITED")), Some(None), None] {
            assert_eq!(
                acc.check_bucket("other", owner)
                    .unwrap_err()
                    .status_and_code(),
                (403, "AccessDenied")
            );
        }
        assert!(acc.check_admin().is_err());
        assert!(acc.may_touch("photos", None) && !acc.may_touch("other", None));
        // A key of the file from before owners (no admin field, no list) is an admin key.
        let full = signed("GET", "/x", "", AKID, SECRET, T)
            .verify(&a, T)
            .unwrap();
        assert!(full.check_admin().is_ok() && full.may_touch("other", Some("OWNER")));
        // A key that is neither touches only its own buckets, and may create others.
        let own = signed("GET", "/x", "", "OWNER", "ownersecret", T)
            .verify(&a, T)
            .unwrap();
        assert!(own.check_admin().is_err());
        assert!(own.check_bucket("mine", Some(Some("OWNER"))).is_ok());
        assert!(own.check_bucket("new", None).is_ok());
        for owner in [Some(Some(AKID)), Some(None)] {
            assert_eq!(
                own.check_bucket("theirs", owner)
                    .unwrap_err()
                    .status_and_code(),
                (403, "AccessDenied")
            );
        }
        std::fs::remove_dir_all(d).unwrap();
    }
}
