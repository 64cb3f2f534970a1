//! Entry points for the fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer) and for the
//! regression tests of what they find. Each takes arbitrary bytes and drives one parser the
//! way untrusted input reaches it: journal lines and snapshots as a director replays them
//! at start, SigV4 headers and presigned queries as the director verifies them, aws-chunked
//! bodies as the body reader decodes them, browser form bodies (multipart/form-data) as POST
//! Object reads them, the XML documents clients send, `Range` and
//! `x-amz-copy-source-range`, and manifests as `dpyfs recover` reads them. None may panic,
//! loop for ever or allocate without bound; what they return is ignored.
//!
//! Compiled in every build (it is small, and clippy and the tests see it), used by no
//! binary.

use crate::director::meta::index::Index;
use crate::director::meta::manifest;
use crate::director::meta::records::Record;
use crate::director::s3::api::parse_range;
use crate::director::s3::auth::Auth;
use crate::director::s3::body::{self, SignatureChain};
use crate::director::s3::multipart_routes::parse_copy_range;
use crate::http::Request;
use crate::s3::keys::{KeyEntry, Keys, KeysFile};
use crate::s3::xml;
use std::io::Read;
use std::sync::OnceLock;

/// A body the aws-chunked target reads is cut off after this many decoded bytes.
pub const FUZZ_BODY_BYTES_MAX: u64 = 1 << 20;
/// The access key and secret the SigV4 target's director knows.
pub const FUZZ_ACCESS_KEY: &str = "DPYFSFUZZKEY0000000A";
pub const FUZZ_SECRET_KEY: &str = "fuzzsecretfuzzsecretfuzzsecretfuzzsecret";
/// The clock of the SigV4 target: 2013-05-24T00:00:00Z, the date of AWS's examples.
pub const FUZZ_NOW_MS: u64 = 1_369_353_600_000;

/// Journal lines as replay reads them. The first byte chooses: even, each further line is
/// taken as the JSON of a record and framed with its right CRC (so the fuzzer reaches the
/// record parsing and the index rules, which a CRC would otherwise hide); odd, the lines are
/// checked as they are, CRC included. Every record that parses is replayed into one index.
pub fn journal_lines(data: &[u8]) -> usize {
    let Some((&mode, rest)) = data.split_first() else {
        return 0;
    };
    let mut replayed = 0;
    let mut index = Index::default();
    for raw in rest.split_inclusive(|&b| b == b'\n') {
        let framed;
        let line = if mode % 2 == 0 {
            let json = raw.strip_suffix(b"\n").unwrap_or(raw);
            framed = frame(json);
            &framed[..]
        } else {
            raw
        };
        let Ok((_, map)) = crate::director::meta::journal::check_line(line) else {
            continue;
        };
        if let Ok((seq, record)) = Record::from_map(map) {
            replayed += usize::from(index.replay(seq, &record).is_ok());
        }
    }
    replayed
}

fn frame(json: &[u8]) -> Vec<u8> {
    let mut line = format!("{:08x} ", crc32fast::hash(json)).into_bytes();
    line.extend_from_slice(json);
    line.push(b'\n');
    line
}

/// A snapshot file's JSON, as the newest snapshot is read at start: its `state` becomes an
/// index (and is written back out, as compaction would).
pub fn snapshot(data: &[u8]) {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let state = doc.get("state").unwrap_or(&doc);
    if let Ok(index) = Index::from_snapshot(state) {
        let _ = index.to_snapshot();
    }
}

/// A request the director verifies. The input is lines: method, path, query, then
/// `name: value` headers; the body is empty. The director knows one key
/// (`FUZZ_ACCESS_KEY`) and its clock reads `FUZZ_NOW_MS`.
pub fn sigv4_request(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let method = lines.next().unwrap_or("GET").to_string();
    let path = lines.next().unwrap_or("/").to_string();
    let query = lines.next().unwrap_or("").to_string();
    let headers = header_lines(lines);
    let mut empty: &[u8] = &[];
    let req = Request {
        method,
        path,
        query,
        params: Default::default(),
        headers,
        body: &mut empty,
        body_len: Some(0),
        remote: None,
    };
    let _ = fuzz_auth().verify(&req, FUZZ_NOW_MS);
    let _ =
        fuzz_auth().verify_with_body_hash(&req, FUZZ_NOW_MS, &crate::hash::Hash::of(b"").to_hex());
    for h in &req.headers {
        let _ = crate::sigv4::parse_auth_header(&h.1);
        let _ = crate::sigv4::parse_credential(&h.1);
        let _ = crate::sigv4::parse_signed_headers(&h.1);
    }
}

/// `name: value` lines as a request's headers (lines without a colon are skipped).
fn header_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect()
}

/// A PUT `?acl` as the ACL parser reads it: header lines (`x-amz-acl: ...`,
/// `x-amz-grant-read: id="owner", uri="..."`) up to an empty line, then the body (an
/// `AccessControlPolicy` document, or nothing). The keys `owner` and `friend` exist. An
/// accepted ACL must render as a document that reads back accepted. Returns whether the
/// ACL was accepted.
pub fn acl_request(data: &[u8]) -> bool {
    use crate::director::s3::acl;
    let Ok(text) = std::str::from_utf8(data) else {
        return false;
    };
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let known = |id: &str| id == "owner" || id == "friend";
    let mut empty: &[u8] = &[];
    let mut req = Request {
        method: "PUT".into(),
        path: "/b".into(),
        query: "acl".into(),
        params: Default::default(),
        headers: header_lines(head.split('\n')),
        body: &mut empty,
        body_len: Some(0),
        remote: None,
    };
    let Ok(got) = acl::from_request(&req, body, "owner", &known) else {
        return false;
    };
    let doc = acl::document("owner", &got);
    req.headers.clear();
    if let Err(e) = acl::from_request(&req, &doc, "owner", &known) {
        panic!("an accepted ACL does not read back: {e}\n{doc}");
    }
    true
}

/// The director of the SigV4 target: keys written once to a private temporary file.
fn fuzz_auth() -> &'static Auth {
    static AUTH: OnceLock<Auth> = OnceLock::new();
    AUTH.get_or_init(|| {
        let path =
            std::env::temp_dir().join(format!("dpyfs-fuzz-keys-{}.json", std::process::id()));
        let file = KeysFile {
            keys: vec![KeyEntry {
                access_key: FUZZ_ACCESS_KEY.into(),
                secret_key: FUZZ_SECRET_KEY.into(),
                buckets: None,
                admin: None,
                created: 0,
            }],
            ..KeysFile::default()
        };
        let keys = file
            .save(&path)
            .and_then(|()| Keys::load(&path))
            .unwrap_or_else(|e| panic!("fuzz keys file {}: {e}", path.display()));
        let _ = std::fs::remove_file(&path);
        Auth::with_keys(keys)
    })
}

/// A chain that expects the same signature for every chunk and the trailer, so that signed
/// framings can be reached: 64 zeros.
struct ZeroChain;

impl SignatureChain for ZeroChain {
    fn chunk(&mut self, _: &str) -> String {
        "0".repeat(64)
    }
    fn trailer(&mut self, _: &str) -> String {
        "0".repeat(64)
    }
}

/// The framings the aws-chunked target picks from with the input's first byte: the value
/// of `x-amz-content-sha256`, and whether a CRC32 trailer is announced.
const BODY_FRAMINGS: [(&str, bool); 5] = [
    ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", true),
    ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", false),
    ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", true),
    ("UNSIGNED-PAYLOAD", false),
    (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        false,
    ),
];

/// A request body as the director reads it. Byte 0 picks the framing, bytes 1..9 are the
/// announced decoded length (little-endian), the rest is the body on the wire. Returns the
/// decoded body when every check passed.
pub fn aws_chunked_body(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 9 {
        return None;
    }
    let (framing, trailer) = BODY_FRAMINGS[data[0] as usize % BODY_FRAMINGS.len()];
    let mut len_bytes = [0u8; 8];
    len_bytes.copy_from_slice(&data[1..9]);
    let decoded_len = u64::from_le_bytes(len_bytes) % (FUZZ_BODY_BYTES_MAX * 2);
    let mut wire = &data[9..];
    let mut headers = vec![
        ("x-amz-content-sha256".to_string(), framing.to_string()),
        ("content-encoding".to_string(), "aws-chunked".to_string()),
        (
            "x-amz-decoded-content-length".to_string(),
            decoded_len.to_string(),
        ),
    ];
    if trailer {
        headers.push(("x-amz-trailer".into(), "x-amz-checksum-crc32".into()));
    }
    let body_len = Some(wire.len() as u64);
    let mut req = Request {
        method: "PUT".into(),
        path: "/b/k".into(),
        query: String::new(),
        params: Default::default(),
        headers,
        body: &mut wire,
        body_len,
        remote: None,
    };
    let chain: Option<Box<dyn SignatureChain>> = if framing.contains("HMAC") {
        Some(Box::new(ZeroChain))
    } else {
        None
    };
    let mut checked = body::open(&mut req, chain).ok()?;
    let mut sink = Vec::new();
    (&mut checked)
        .take(FUZZ_BODY_BYTES_MAX)
        .read_to_end(&mut sink)
        .ok()?;
    Some(sink)
}

/// An XML document a client sends (CompleteMultipartUpload, DeleteObjects, ACLs...).
pub fn xml_document(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(doc) = xml::parse(text) {
            let _ = doc.child("Part").and_then(|p| p.child_text("ETag"));
        }
        let _ = crate::director::s3::multipart_routes::parse_complete(text);
    }
}

/// `Range` and `x-amz-copy-source-range` against an object size taken from the first 8
/// bytes; the answers must lie inside the object.
pub fn ranges(data: &[u8]) {
    if data.len() < 8 {
        return;
    }
    let mut size_bytes = [0u8; 8];
    size_bytes.copy_from_slice(&data[..8]);
    let size = u64::from_le_bytes(size_bytes);
    let Ok(text) = std::str::from_utf8(&data[8..]) else {
        return;
    };
    if let crate::director::s3::api::RangeSpec::Part(start, end) = parse_range(Some(text), size) {
        assert!(start < end, "empty range {start}..{end} for {text:?}");
        assert!(
            end <= size,
            "range {start}..{end} beyond size {size} for {text:?}"
        );
    }
    if let Ok((start, end)) = parse_copy_range(text, size) {
        assert!(start <= end, "copy range {start}..{end} for {text:?}");
        assert!(
            end <= size,
            "copy range {start}..{end} beyond size {size} for {text:?}"
        );
    }
}

/// A chunk that `dpyfs recover` reads as a possible manifest.
pub fn manifest_chunk(data: &[u8]) {
    if let Some(m) = manifest::decode(data) {
        let _ = manifest::encode(&m);
        // An inline object's base64 body, checked against its record.
        let _ = m.body();
    }
}

/// Boundaries the form target tries: curl's and browsers' shapes, and a one-byte one.
const FORM_BOUNDARIES: [&str; 3] = [
    "------------------------d74496d66958873e",
    "----WebKitFormBoundary7MA4YWxkTrZu0gW",
    "X",
];

/// A multipart/form-data body as POST Object reads it: byte 0 picks the boundary, the rest
/// is the body. Every part is read (values bounded by `FUZZ_BODY_BYTES_MAX`); returns the
/// number of parts read whole.
pub fn form_body(data: &[u8]) -> usize {
    let Some((&pick, wire)) = data.split_first() else {
        return 0;
    };
    let boundary = FORM_BOUNDARIES[pick as usize % FORM_BOUNDARIES.len()];
    let mut form = crate::s3::form::FormReader::new(wire, boundary);
    let mut parts = 0;
    while let Ok(Some(_)) = form.next_part() {
        match form.read_value(FUZZ_BODY_BYTES_MAX) {
            Ok(Some(_)) => parts += 1,
            _ => break,
        }
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_point_takes_empty_and_odd_input() {
        let inputs: [&[u8]; 6] = [
            b"",
            b"\x00",
            b"\x01\n\n",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff",
            b"GET\n/\n\nauthorization: AWS4-HMAC-SHA256 Credential=x/y/z/s3/aws4_request,SignedHeaders=host,Signature=00",
            b"\x00{\"seq\":1,\"v\":1,\"type\":\"bucket_create\",\"bucket\":\"abc\"}\n",
        ];
        for i in inputs {
            journal_lines(i);
            snapshot(i);
            sigv4_request(i);
            aws_chunked_body(i);
            xml_document(i);
            ranges(i);
            manifest_chunk(i);
            form_body(i);
            acl_request(i);
        }
    }

    #[test]
    fn the_acl_seeds_are_accepted_and_read_back() {
        for seed in ["grants", "canned", "document"] {
            let path = format!("{}/fuzz/seeds/acl/{seed}", env!("CARGO_MANIFEST_DIR"));
            let data = std::fs::read(&path).unwrap();
            assert!(acl_request(&data), "{seed}");
        }
        // A grant to a key the director does not have is refused.
        assert!(!acl_request(b"x-amz-grant-read: id=\"stranger\"\n\n"));
        assert!(!acl_request(b"x-amz-acl: no-such-acl\n\n"));
    }

    #[test]
    fn a_valid_form_reads_through_the_target() {
        let body = b"\x02--X\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nk\r\n--X\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f\"\r\n\r\ndata\r\n--X--\r\n";
        assert_eq!(form_body(body), 2);
        // Cut before the closing boundary: the file part is not read whole.
        assert_eq!(form_body(&body[..body.len() - 12]), 1);
    }

    #[test]
    fn framed_journal_lines_reach_the_index() {
        let lines = b"\x00{\"seq\":1,\"v\":1,\"type\":\"bucket_create\",\"bucket\":\"abc\",\"created\":1}\n\
            {\"seq\":2,\"v\":1,\"type\":\"bucket_delete\",\"bucket\":\"abc\"}\n\
            {\"seq\":3,\"v\":1,\"type\":\"bucket_delete\",\"bucket\":\"abc\"}\n";
        // The third deletes a bucket that is gone: refused by the index's rules.
        assert_eq!(journal_lines(lines), 2);
        // Odd first byte: the same lines unframed fail the CRC check.
        let mut unframed = lines.to_vec();
        unframed[0] = 1;
        assert_eq!(journal_lines(&unframed), 0);
    }

    #[test]
    fn a_valid_aws_chunked_body_decodes_through_the_target() {
        // UNSIGNED-PAYLOAD-TRAILER framing, 5 decoded bytes, one chunk and a CRC32 trailer.
        let mut input = vec![0u8];
        input.extend_from_slice(&5u64.to_le_bytes());
        input.extend_from_slice(b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n");
        assert_eq!(aws_chunked_body(&input).as_deref(), Some(&b"hello"[..]));
        // The same body with a wrong trailer checksum is refused.
        let bad = String::from_utf8(input)
            .unwrap()
            .replace("NhCmhg==", "AAAAAA==");
        assert_eq!(aws_chunked_body(bad.as_bytes()), None);
    }
}
