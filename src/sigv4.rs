//! AWS Signature Version 4 as S3 uses it: canonical requests, signing keys, signatures,
//! presigned URLs and the chained signatures of a streaming (aws-chunked) body.
//!
//! Pure functions over strings, no HTTP: the director verifies with them
//! (`director::s3::auth`), client tools and tests sign with them. The unit tests below check
//! every piece against the examples AWS publishes.
//!
//! S3's own rules, where SigV4 in general differs:
//! - the canonical URI is the path encoded once (other services encode it twice);
//! - query names and values are decoded and re-encoded with the unreserved set
//!   `A-Z a-z 0-9 - _ . ~`, then sorted; a flag without a value becomes `name=`;
//! - header values are trimmed and runs of spaces collapsed to one.

use crate::hash::{Hash, to_hex};
use crate::http::{percent_decode, percent_encode};
use crate::timefmt::amz_date;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last part of every credential scope.
pub const TERMINATOR: &str = "aws4_request";
/// `x-amz-content-sha256` of a body that is not hashed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Signed aws-chunked body: every chunk carries a signature.
pub const STREAMING_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// Signed aws-chunked body with a signed trailer.
pub const STREAMING_PAYLOAD_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
/// Unsigned aws-chunked body with a trailer (its checksum is verified, not signed).
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
/// SHA-256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Longest validity of a presigned URL (7 days), as S3.
pub const PRESIGN_EXPIRES_MAX_SECS: u64 = 7 * 24 * 3600;

/// An access key and its secret. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <secret>)", self.access_key)
    }
}

/// HMAC-SHA1, for the Signature Version 2 presigned URLs older clients still make.
pub fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut mac = match <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(data);
    let mut out = [0u8; 20];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// Query parameters that belong to a Signature Version 2 canonical resource (the
/// sub-resources and response overrides), in the order they are written.
pub const V2_SUBRESOURCES: &[&str] = &[
    "acl",
    "cors",
    "delete",
    "lifecycle",
    "location",
    "logging",
    "notification",
    "partNumber",
    "policy",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// The Signature Version 2 string to sign of a presigned request: verb, Content-MD5,
/// Content-Type, Expires, the `x-amz-*` headers and the canonical resource (the path as
/// sent and the sub-resources of the query, values decoded, sorted by name).
pub fn v2_string_to_sign(
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    expires: &str,
) -> String {
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map_or("", |(_, v)| v.trim())
    };
    let mut amz: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-amz-"))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    amz.sort();
    let mut amz_block = String::new();
    for (i, (k, v)) in amz.iter().enumerate() {
        if i > 0 && amz[i - 1].0 == *k {
            amz_block.pop();
            amz_block.push(',');
        } else {
            amz_block.push_str(k);
            amz_block.push(':');
        }
        amz_block.push_str(v);
        amz_block.push('\n');
    }
    let mut subs: Vec<(String, String)> = crate::http::query_pairs(query)
        .into_iter()
        .filter(|(k, _)| V2_SUBRESOURCES.contains(&k.as_str()))
        .collect();
    subs.sort();
    let mut resource = path.to_string();
    for (i, (k, v)) in subs.iter().enumerate() {
        resource.push(if i == 0 { '?' } else { '&' });
        resource.push_str(k);
        if !v.is_empty() {
            resource.push('=');
            resource.push_str(v);
        }
    }
    format!(
        "{method}\n{}\n{}\n{expires}\n{amz_block}{resource}",
        header("content-md5"),
        header("content-type")
    )
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length: new_from_slice cannot fail for it.
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(data);
    let mut out = [0u8; 32];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// `kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub fn signing_key(secret: &str, yyyymmdd: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_sha256(format!("AWS4{secret}").as_bytes(), yyyymmdd.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    hmac_sha256(&k_service, TERMINATOR.as_bytes())
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    Hash::of(data).to_hex()
}

/// Equality of two signatures in time independent of where they differ.
pub fn same_signature(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The canonical URI of a path as sent: decoded once and encoded once, so `%7E` and `~`,
/// or `%2f` and `%2F`, sign the same. A path that does not decode to UTF-8 is used as
/// sent. Empty is `/`.
pub fn canonical_uri(path: &str) -> String {
    if path.is_empty() {
        return "/".into();
    }
    match percent_decode(path, false) {
        Some(p) => percent_encode(&p, true),
        None => path.to_string(),
    }
}

/// The canonical query string: pairs decoded (`+` is a space, as in any query) and
/// re-encoded with the unreserved set, sorted by name then value, `name=` for a flag.
/// Pairs named in `skip` (the signature of a presigned URL) are left out.
pub fn canonical_query(query: &str, skip: &[&str]) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| percent_decode(s, true).unwrap_or_else(|| s.to_string());
            (dec(k), dec(v))
        })
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| (percent_encode(&k, false), percent_encode(&v, false)))
        .collect();
    pairs.sort();
    let parts: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join("&")
}

/// A header value as signed: trimmed, inner runs of spaces and tabs collapsed to one space.
pub fn canonical_header_value(v: &str) -> String {
    v.split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The canonical headers block (`name:value\n` for each signed header, sorted, repeated
/// headers joined by `,`) from `headers` (any case). None names a signed header the
/// request does not carry.
pub fn canonical_headers(headers: &[(String, String)], signed: &[String]) -> Option<String> {
    let mut out = String::new();
    for name in signed {
        let values: Vec<String> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| canonical_header_value(v))
            .collect();
        if values.is_empty() {
            return None;
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    Some(out)
}

/// The parts of a request that its signature covers, already canonical.
pub struct CanonicalRequest<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub query: &'a str,
    /// The canonical headers block (see `canonical_headers`).
    pub headers: &'a str,
    /// Lowercase names, sorted.
    pub signed_headers: &'a [String],
    pub payload: &'a str,
}

impl CanonicalRequest<'_> {
    pub fn text(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n{}",
            self.method,
            self.uri,
            self.query,
            self.headers,
            self.signed_headers.join(";"),
            self.payload
        )
    }
}

/// Where a signature is valid: `yyyymmdd/region/service/aws4_request`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub date: String,
    pub region: String,
    pub service: String,
}

impl Scope {
    pub fn text(&self) -> String {
        format!(
            "{}/{}/{}/{TERMINATOR}",
            self.date, self.region, self.service
        )
    }
}

/// `AWS4-HMAC-SHA256\n<amz date>\n<scope>\n<hex sha256 of the canonical request>`.
pub fn string_to_sign(amz_datetime: &str, scope: &Scope, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_datetime}\n{}\n{}",
        scope.text(),
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Hex HMAC of `string_to_sign` with the signing key.
pub fn signature(key: &[u8; 32], string_to_sign: &str) -> String {
    to_hex(&hmac_sha256(key, string_to_sign.as_bytes()))
}

/// The signature of one chunk of a signed aws-chunked body, chained on the previous
/// chunk's signature (the request's own signature for the first chunk).
pub fn chunk_signature(
    key: &[u8; 32],
    amz_datetime: &str,
    scope: &Scope,
    previous: &str,
    chunk_sha256_hex: &str,
) -> String {
    let sts = format!(
        "{ALGORITHM}-PAYLOAD\n{amz_datetime}\n{}\n{previous}\n{EMPTY_SHA256}\n{chunk_sha256_hex}",
        scope.text()
    );
    signature(key, &sts)
}

/// The signature of the trailer of a signed aws-chunked body, chained on the last chunk's.
pub fn trailer_signature(
    key: &[u8; 32],
    amz_datetime: &str,
    scope: &Scope,
    previous: &str,
    trailer_sha256_hex: &str,
) -> String {
    let sts = format!(
        "{ALGORITHM}-TRAILER\n{amz_datetime}\n{}\n{previous}\n{trailer_sha256_hex}",
        scope.text()
    );
    signature(key, &sts)
}

/// An `Authorization: AWS4-HMAC-SHA256 Credential=.., SignedHeaders=.., Signature=..`
/// header, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthHeader {
    pub access_key: String,
    pub scope: Scope,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

/// Parses `AKID/yyyymmdd/region/service/aws4_request`.
pub fn parse_credential(c: &str) -> Result<(String, Scope), String> {
    let parts: Vec<&str> = c.split('/').collect();
    let [key, date, region, service, term] = parts.as_slice() else {
        return Err(format!(
            "the credential '{c}' is not of the form KEY/yyyymmdd/region/service/aws4_request"
        ));
    };
    if key.is_empty() || region.is_empty() || service.is_empty() {
        return Err(format!("the credential '{c}' has an empty part"));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the credential date '{date}' is not yyyymmdd"));
    }
    if *term != TERMINATOR {
        return Err(format!(
            "the credential ends in '{term}' instead of '{TERMINATOR}'"
        ));
    }
    Ok((
        key.to_string(),
        Scope {
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
        },
    ))
}

/// Parses a signed-headers list `host;x-amz-date`: lowercase names, sorted, no repeats.
pub fn parse_signed_headers(s: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = s.split(';').map(str::to_string).collect();
    let valid = |n: &String| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_graphic() && !b.is_ascii_uppercase())
    };
    if !names.iter().all(valid) {
        return Err(format!("the signed headers '{s}' are not lowercase names"));
    }
    if !names.windows(2).all(|w| w[0] < w[1]) {
        return Err(format!("the signed headers '{s}' are not sorted"));
    }
    Ok(names)
}

fn is_signature(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses the value of an `Authorization` header that starts with `AWS4-HMAC-SHA256 `.
pub fn parse_auth_header(v: &str) -> Result<AuthHeader, String> {
    let rest = v
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| format!("the authorization header does not start with {ALGORITHM}"))?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        let (k, val) = part
            .split_once('=')
            .ok_or_else(|| format!("'{part}' in the authorization header is not NAME=VALUE"))?;
        let slot = match k.trim() {
            "Credential" => &mut cred,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut sig,
            other => return Err(format!("unknown authorization header field '{other}'")),
        };
        if slot.replace(val.trim()).is_some() {
            return Err(format!("the authorization header repeats {k}"));
        }
    }
    let (Some(cred), Some(signed), Some(sig)) = (cred, signed, sig) else {
        return Err(
            "the authorization header needs Credential, SignedHeaders and Signature".into(),
        );
    };
    let (access_key, scope) = parse_credential(cred)?;
    if !is_signature(sig) {
        return Err("the signature is not 64 hex digits".into());
    }
    Ok(AuthHeader {
        access_key,
        scope,
        signed_headers: parse_signed_headers(signed)?,
        signature: sig.to_ascii_lowercase(),
    })
}

/// Checks a signature value taken from a presigned URL's query.
pub fn parse_query_signature(s: &str) -> Result<String, String> {
    if is_signature(s) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err("X-Amz-Signature is not 64 hex digits".into())
    }
}

/// Headers to add to a request so it is signed (x-amz-date, x-amz-content-sha256,
/// authorization). `path` as sent (percent-encoded), `query` raw as sent, `headers` the
/// other headers to sign (host is added from `host`), `payload_sha256` hex or
/// "UNSIGNED-PAYLOAD".
#[allow(clippy::too_many_arguments)] // the agreed interface (docs/notes): one value each
pub fn sign_headers(
    creds: &Credentials,
    region: &str,
    method: &str,
    path: &str,
    query: &str,
    host: &str,
    headers: &[(String, String)],
    payload_sha256: &str,
    now_unix: u64,
) -> Vec<(String, String)> {
    let datetime = amz_date(now_unix * 1000);
    let scope = Scope {
        date: datetime[..8].to_string(),
        region: region.to_string(),
        service: "s3".into(),
    };
    let mut all: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    all.push(("host".into(), host.into()));
    all.push(("x-amz-date".into(), datetime.clone()));
    all.push(("x-amz-content-sha256".into(), payload_sha256.into()));
    let mut signed: Vec<String> = all.iter().map(|(k, _)| k.clone()).collect();
    signed.sort();
    signed.dedup();
    let block = canonical_headers(&all, &signed).unwrap_or_default();
    let creq = CanonicalRequest {
        method,
        uri: &canonical_uri(path),
        query: &canonical_query(query, &[]),
        headers: &block,
        signed_headers: &signed,
        payload: payload_sha256,
    }
    .text();
    let key = signing_key(&creds.secret_key, &scope.date, region, "s3");
    let sig = signature(&key, &string_to_sign(&datetime, &scope, &creq));
    vec![
        ("x-amz-date".into(), datetime),
        ("x-amz-content-sha256".into(), payload_sha256.into()),
        (
            "authorization".into(),
            format!(
                "{ALGORITHM} Credential={}/{}, SignedHeaders={}, Signature={sig}",
                creds.access_key,
                scope.text(),
                signed.join(";")
            ),
        ),
    ]
}

/// A presigned URL's query string (X-Amz-Algorithm ... X-Amz-Signature) for tests and
/// tools: only `host` is signed, the payload is `UNSIGNED-PAYLOAD`.
pub fn presign_query(
    creds: &Credentials,
    region: &str,
    method: &str,
    path: &str,
    host: &str,
    expires_secs: u64,
    now_unix: u64,
) -> String {
    let datetime = amz_date(now_unix * 1000);
    let scope = Scope {
        date: datetime[..8].to_string(),
        region: region.to_string(),
        service: "s3".into(),
    };
    let query = format!(
        "X-Amz-Algorithm={ALGORITHM}&X-Amz-Credential={}&X-Amz-Date={datetime}&X-Amz-Expires={expires_secs}&X-Amz-SignedHeaders=host",
        percent_encode(&format!("{}/{}", creds.access_key, scope.text()), false)
    );
    let signed = vec!["host".to_string()];
    let creq = CanonicalRequest {
        method,
        uri: &canonical_uri(path),
        query: &canonical_query(&query, &[]),
        headers: &format!("host:{}\n", canonical_header_value(host)),
        signed_headers: &signed,
        payload: UNSIGNED_PAYLOAD,
    }
    .text();
    let key = signing_key(&creds.secret_key, &scope.date, region, "s3");
    let sig = signature(&key, &string_to_sign(&datetime, &scope, &creq));
    format!("{query}&X-Amz-Signature={sig}")
}

#[cfg(test)]
mod tests {
    use super::*;

    // The examples of the AWS S3 API reference ("Signature Calculations for the
    // Authorization Header" and "Query String Authentication" / "Examples: Signature
    // Calculations in AWS Signature Version 4", and "Transferring Payload in Multiple
    // Chunks"): bucket examplebucket, 24 May 2013.
    const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const T_20130524: u64 = 1_369_353_600;

    fn creds() -> Credentials {
        Credentials {
            access_key: AKID.into(),
            secret_key: SECRET.into(),
        }
    }

    fn scope() -> Scope {
        Scope {
            date: "20130524".into(),
            region: "us-east-1".into(),
            service: "s3".into(),
        }
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn aws_example_get_object_header() {
        let headers = h(&[
            ("Host", "examplebucket.s3.amazonaws.com"),
            ("Range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ]);
        let signed = parse_signed_headers("host;range;x-amz-content-sha256;x-amz-date").unwrap();
        let block = canonical_headers(&headers, &signed).unwrap();
        let creq = CanonicalRequest {
            method: "GET",
            uri: &canonical_uri("/test.txt"),
            query: &canonical_query("", &[]),
            headers: &block,
            signed_headers: &signed,
            payload: EMPTY_SHA256,
        }
        .text();
        let sts = string_to_sign("20130524T000000Z", &scope(), &creq);
        assert!(
            sts.ends_with("7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"),
            "{creq}"
        );
        let key = signing_key(SECRET, "20130524", "us-east-1", "s3");
        assert_eq!(
            signature(&key, &sts),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        // sign_headers builds the same request when given the same headers.
        let out = sign_headers(
            &creds(),
            "us-east-1",
            "GET",
            "/test.txt",
            "",
            "examplebucket.s3.amazonaws.com",
            &h(&[("Range", "bytes=0-9")]),
            EMPTY_SHA256,
            T_20130524,
        );
        assert_eq!(out[0], ("x-amz-date".into(), "20130524T000000Z".into()));
        assert_eq!(
            out[2].1,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        let parsed = parse_auth_header(&out[2].1).unwrap();
        assert_eq!(parsed.access_key, AKID);
        assert_eq!(parsed.scope, scope());
        assert_eq!(parsed.signed_headers, signed);
    }

    #[test]
    fn aws_example_put_object_header() {
        let body = b"Welcome to Amazon S3.";
        let payload = sha256_hex(body);
        assert_eq!(
            payload,
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        let out = sign_headers(
            &creds(),
            "us-east-1",
            "PUT",
            "/test%24file.text",
            "",
            "examplebucket.s3.amazonaws.com",
            &h(&[
                ("Date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ]),
            &payload,
            T_20130524,
        );
        assert!(
            out[2].1.ends_with(
                "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
            ),
            "{}",
            out[2].1
        );
    }

    #[test]
    fn aws_example_list_objects_query() {
        let out = sign_headers(
            &creds(),
            "us-east-1",
            "GET",
            "/",
            "max-keys=2&prefix=J",
            "examplebucket.s3.amazonaws.com",
            &[],
            EMPTY_SHA256,
            T_20130524,
        );
        assert!(
            out[2].1.ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{}",
            out[2].1
        );
    }

    #[test]
    fn aws_example_get_bucket_lifecycle_flag() {
        // `?lifecycle` is signed as `lifecycle=`.
        let out = sign_headers(
            &creds(),
            "us-east-1",
            "GET",
            "/",
            "lifecycle",
            "examplebucket.s3.amazonaws.com",
            &[],
            EMPTY_SHA256,
            T_20130524,
        );
        assert!(
            out[2].1.ends_with(
                "Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
            ),
            "{}",
            out[2].1
        );
    }

    #[test]
    fn aws_example_presigned_get() {
        let q = presign_query(
            &creds(),
            "us-east-1",
            "GET",
            "/test.txt",
            "examplebucket.s3.amazonaws.com",
            86400,
            T_20130524,
        );
        assert_eq!(
            q,
            "X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
             &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        // The verifier's view: the query without the signature, canonicalised.
        assert_eq!(
            canonical_query(&q, &["X-Amz-Signature"]),
            q.split("&X-Amz-Signature").next().unwrap()
        );
    }

    #[test]
    fn aws_example_streaming_chunks() {
        let headers = h(&[
            ("Host", "s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", STREAMING_PAYLOAD),
            ("Content-Encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("Content-Length", "66824"),
        ]);
        let signed = parse_signed_headers(
            "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class",
        )
        .unwrap();
        let creq = CanonicalRequest {
            method: "PUT",
            uri: &canonical_uri("/examplebucket/chunkObject.txt"),
            query: "",
            headers: &canonical_headers(&headers, &signed).unwrap(),
            signed_headers: &signed,
            payload: STREAMING_PAYLOAD,
        }
        .text();
        let key = signing_key(SECRET, "20130524", "us-east-1", "s3");
        let seed = signature(&key, &string_to_sign("20130524T000000Z", &scope(), &creq));
        assert_eq!(
            seed,
            "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
        );
        let c1 = chunk_signature(
            &key,
            "20130524T000000Z",
            &scope(),
            &seed,
            &sha256_hex(&[b'a'; 65536]),
        );
        assert_eq!(
            c1,
            "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
        );
        let c2 = chunk_signature(
            &key,
            "20130524T000000Z",
            &scope(),
            &c1,
            &sha256_hex(&[b'a'; 1024]),
        );
        assert_eq!(
            c2,
            "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
        );
        let last = chunk_signature(&key, "20130524T000000Z", &scope(), &c2, EMPTY_SHA256);
        assert_eq!(
            last,
            "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"
        );
    }

    #[test]
    fn uri_canonicalisation() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/b/a b"), "/b/a%20b");
        assert_eq!(canonical_uri("/b/a%20b"), "/b/a%20b");
        // `+` in a path is a plus, never a space.
        assert_eq!(canonical_uri("/b/a+b"), "/b/a%2Bb");
        assert_eq!(canonical_uri("/b/a%2Bb"), "/b/a%2Bb");
        // `~` is unreserved, however it was sent.
        assert_eq!(canonical_uri("/b/%7Ehome"), "/b/~home");
        assert_eq!(canonical_uri("/b/~home"), "/b/~home");
        // Slashes stay, and an encoded slash stays a slash (S3 keys hold them).
        assert_eq!(canonical_uri("/b/x/y/"), "/b/x/y/");
        assert_eq!(canonical_uri("/b/x%2Fy"), "/b/x/y");
        // Encoded once for S3 (not twice, as other services), in uppercase hex.
        assert_eq!(canonical_uri("/b/%c3%a9t%C3%A9"), "/b/%C3%A9t%C3%A9");
        assert_eq!(canonical_uri("/b/été"), "/b/%C3%A9t%C3%A9");
        assert_eq!(canonical_uri("/b/日本"), "/b/%E6%97%A5%E6%9C%AC");
        // `$`, `!`, `'` and friends are reserved for AWS: always encoded.
        assert_eq!(canonical_uri("/b/a$!'()*"), "/b/a%24%21%27%28%29%2A");
        // Not UTF-8 once decoded: used as sent.
        assert_eq!(canonical_uri("/b/%FF"), "/b/%FF");
    }

    #[test]
    fn query_canonicalisation() {
        assert_eq!(canonical_query("", &[]), "");
        // Sorted by name, flags get `=`, trailing `=` kept empty.
        assert_eq!(canonical_query("uploads", &[]), "uploads=");
        assert_eq!(canonical_query("uploads=", &[]), "uploads=");
        assert_eq!(
            canonical_query("prefix=J&max-keys=2&acl", &[]),
            "acl=&max-keys=2&prefix=J"
        );
        // Spaces (as %20 or +) become %20; a literal plus was sent as %2B.
        assert_eq!(canonical_query("prefix=a%20b", &[]), "prefix=a%20b");
        assert_eq!(canonical_query("prefix=a+b", &[]), "prefix=a%20b");
        assert_eq!(canonical_query("prefix=a%2Bb", &[]), "prefix=a%2Bb");
        // `/` is encoded in query values; `~` is not.
        assert_eq!(canonical_query("prefix=x/y~z", &[]), "prefix=x%2Fy~z");
        assert_eq!(canonical_query("prefix=x%2fy%7Ez", &[]), "prefix=x%2Fy~z");
        // Unicode, and lowercase hex from the client, re-encoded in uppercase.
        assert_eq!(canonical_query("prefix=%c3%a9", &[]), "prefix=%C3%A9");
        assert_eq!(canonical_query("prefix=é", &[]), "prefix=%C3%A9");
        // Same name twice: sorted by value.
        assert_eq!(canonical_query("a=2&a=1", &[]), "a=1&a=2");
        // Names are compared after encoding, byte by byte (uppercase first).
        assert_eq!(canonical_query("b=1&B=2&a=3", &[]), "B=2&a=3&b=1");
        assert_eq!(
            canonical_query("X-Amz-Signature=ab&x=1", &["X-Amz-Signature"]),
            "x=1"
        );
    }

    #[test]
    fn header_canonicalisation() {
        assert_eq!(canonical_header_value("  a   b \t c  "), "a b c");
        assert_eq!(
            canonical_header_value("\"quoted  text\""),
            "\"quoted text\""
        );
        let headers = h(&[
            ("X-Amz-Meta-A", " one "),
            ("x-amz-meta-a", "two"),
            ("Host", "h"),
        ]);
        let signed = parse_signed_headers("host;x-amz-meta-a").unwrap();
        assert_eq!(
            canonical_headers(&headers, &signed).unwrap(),
            "host:h\nx-amz-meta-a:one,two\n"
        );
        let missing = parse_signed_headers("host;x-missing").unwrap();
        assert_eq!(canonical_headers(&headers, &missing), None);
    }

    #[test]
    fn auth_header_parsing_refuses_malformed() {
        let ok = "AWS4-HMAC-SHA256 Credential=AK/20130524/eu-west-3/s3/aws4_request,SignedHeaders=host;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";
        let a = parse_auth_header(ok).unwrap();
        assert_eq!(a.scope.region, "eu-west-3");
        assert_eq!(a.signed_headers, vec!["host", "x-amz-date"]);
        for bad in [
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256X Credential=a",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host",
            "AWS4-HMAC-SHA256 Credential=AK/2013-05-24/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws5_request, SignedHeaders=host, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=x-amz-date;host, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=Host, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=xyz",
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request, Credential=AK/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        ] {
            assert!(parse_auth_header(bad).is_err(), "accepted: {bad}");
        }
    }

    #[test]
    fn signatures_compare_whole() {
        assert!(same_signature("abc", "abc"));
        assert!(!same_signature("abc", "abd"));
        assert!(!same_signature("abc", "ab"));
    }

    #[test]
    fn credentials_debug_hides_the_secret() {
        assert!(!format!("{:?}", creds()).contains(SECRET));
    }

    /// The query-string authentication example of the S3 Signature Version 2
    /// documentation ("Query string request authentication alternative").
    #[test]
    fn v2_presigned_example() {
        let sts = v2_string_to_sign("GET", "/johnsmith/photos/puppy.jpg", "", &[], "1175139620");
        assert_eq!(sts, "GET\n\n\n1175139620\n/johnsmith/photos/puppy.jpg");
        let sig = crate::checksum::base64_encode(&hmac_sha1(
            b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            sts.as_bytes(),
        ));
        assert_eq!(sig, "NpgCjnDzrM+WFzoENXmpNDUsSn8=");
        let sts = v2_string_to_sign(
            "PUT",
            "/b/k",
            "uploadId=x&partNumber=2&foo=1",
            &[
                ("X-Amz-Meta-B".into(), " 2 ".into()),
                ("x-amz-meta-a".into(), "1".into()),
                ("x-amz-meta-a".into(), "3".into()),
                ("Content-Type".into(), "text/plain".into()),
            ],
            "9",
        );
        assert_eq!(
            sts,
            "PUT\n\ntext/plain\n9\nx-amz-meta-a:1,3\nx-amz-meta-b:2\n/b/k?partNumber=2&uploadId=x"
        );
    }
}
