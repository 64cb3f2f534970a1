//! Request bodies as S3 clients send them (issue 4): aws-chunked framing with checksum
//! trailers, Content-MD5, x-amz-content-sha256 and x-amz-checksum-* headers, checked
//! against the real director and stores; a refused body changes nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use dpyfs::checksum::{Algorithm, base64_encode, digest};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

fn mkbucket(c: &Cluster, b: &str) {
    let r = request("PUT", &format!("{}/{b}", c.url()), &[], None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

fn code_of(a: &Answer) -> String {
    xml_values(&a.text(), "Code")
        .first()
        .cloned()
        .unwrap_or_default()
}

fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    dpyfs::hash::to_hex(&Md5::digest(data))
}

fn b64(alg: Algorithm, data: &[u8]) -> String {
    base64_encode(&digest(alg, data))
}

/// `data` in aws-chunked framing, `piece` bytes per chunk, then the trailer lines.
fn aws_chunked(data: &[u8], piece: usize, trailers: &[(&str, &str)]) -> Vec<u8> {
    let mut v = Vec::new();
    for p in data.chunks(piece) {
        v.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
        v.extend_from_slice(p);
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(b"0\r\n");
    for (k, val) in trailers {
        v.extend_from_slice(format!("{k}:{val}\r\n").as_bytes());
    }
    v.extend_from_slice(b"\r\n");
    v
}

/// Headers of an unsigned-trailer upload of `len` bytes announcing `trailer`.
fn trailer_headers(len: usize, trailer: &str) -> Vec<(String, String)> {
    vec![
        (
            "x-amz-content-sha256".into(),
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER".into(),
        ),
        ("content-encoding".into(), "aws-chunked".into()),
        ("x-amz-decoded-content-length".into(), len.to_string()),
        ("x-amz-trailer".into(), trailer.into()),
    ]
}

fn put_with(url: &str, headers: &[(String, String)], body: &[u8]) -> Answer {
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    request("PUT", url, &h, Some(body)).unwrap()
}

/// Sends a whole request on a fresh connection (`Connection: close`) and reads the answer
/// to its end: status, and the raw text.
fn raw_exchange(port: u16, head: &str, body: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, out)
}

#[test]
fn unsigned_trailer_uploads_are_verified_stored_and_their_checksum_returned() {
    let dir = TempDir::new("body-trailer");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "bod");
    let url = format!("{}/bod/trailer.bin", c.url());
    // Several content-defined chunks, sent in 64 KiB aws-chunked pieces.
    let data = random_bytes(3 << 20, 11);
    let crc = b64(Algorithm::Crc32, &data);
    let body = aws_chunked(&data, 65536, &[("x-amz-checksum-crc32", &crc)]);
    let r = put_with(
        &url,
        &trailer_headers(data.len(), "x-amz-checksum-crc32"),
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-checksum-crc32"), Some(crc.as_str()));
    let etag = format!("\"{}\"", md5_hex(&data));
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    // GET: exactly the decoded bytes; no checksum unless asked for.
    let g = get(&url).unwrap();
    assert_eq!(g.status, 200);
    assert_eq!(g.body.len(), data.len());
    assert_eq!(sha256_hex(&g.body), sha256_hex(&data));
    assert_eq!(g.header("x-amz-checksum-crc32"), None);
    // HEAD and GET with x-amz-checksum-mode: ENABLED give it; a range does not (as S3).
    let mode = [("x-amz-checksum-mode", "ENABLED")];
    let h = request("HEAD", &url, &mode, None).unwrap();
    assert_eq!(h.status, 200);
    assert_eq!(h.header("x-amz-checksum-crc32"), Some(crc.as_str()));
    let g = request("GET", &url, &mode, None).unwrap();
    assert_eq!(g.header("x-amz-checksum-crc32"), Some(crc.as_str()));
    let ranged = [("x-amz-checksum-mode", "ENABLED"), ("Range", "bytes=0-9")];
    let g = request("GET", &url, &ranged, None).unwrap();
    assert_eq!(g.status, 206);
    assert_eq!(g.header("x-amz-checksum-crc32"), None);

    // The same over a chunked transport (botocore over https): Transfer-Encoding: chunked
    // around the aws-chunked framing, no Content-Length.
    let small = random_bytes(200_000, 12);
    let c32c = b64(Algorithm::Crc32c, &small);
    let inner = aws_chunked(&small, 70_000, &[("x-amz-checksum-crc32c", &c32c)]);
    let mut transport = Vec::new();
    for p in inner.chunks(8000) {
        transport.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
        transport.extend_from_slice(p);
        transport.extend_from_slice(b"\r\n");
    }
    transport.extend_from_slice(b"0\r\n\r\n");
    let head = format!(
        "PUT /bod/te.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\
         Content-Encoding: aws-chunked\r\nx-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER\r\n\
         x-amz-decoded-content-length: {}\r\nx-amz-trailer: x-amz-checksum-crc32c\r\n\
         x-amz-sdk-checksum-algorithm: CRC32C\r\n\r\n",
        small.len()
    );
    let (status, text) = raw_exchange(c.director.port, &head, &transport);
    assert_eq!(status, 200, "{text}");
    assert!(
        text.to_ascii_lowercase().contains(&format!(
            "x-amz-checksum-crc32c: {}",
            c32c.to_ascii_lowercase()
        )),
        "{text}"
    );
    assert_eq!(get(&format!("{}/bod/te.bin", c.url())).unwrap().body, small);

    // A signed streaming body to a director without keys (minio-go style: no
    // Content-Encoding) is decoded; its signatures are not checked.
    let sig = "0".repeat(64);
    let mut signed = Vec::new();
    for p in [&data[..100_000], &data[100_000..150_000], &[][..]] {
        signed.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", p.len()).as_bytes());
        signed.extend_from_slice(p);
        signed.extend_from_slice(b"\r\n");
    }
    let headers = vec![
        (
            "x-amz-content-sha256".to_string(),
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".to_string(),
        ),
        ("x-amz-decoded-content-length".into(), "150000".into()),
    ];
    let surl = format!("{}/bod/signed.bin", c.url());
    let r = put_with(&surl, &headers, &signed);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&surl).unwrap().body, &data[..150_000]);
}

/// What is sent, the trailers, and the expected status and code.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], u16, &'a str);

#[test]
fn a_wrong_or_missing_trailer_stores_nothing_and_keeps_the_previous_version() {
    let dir = TempDir::new("body-bad-trailer");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "bod");
    let url = format!("{}/bod/key", c.url());
    assert_eq!(put(&url, b"version one").unwrap().status, 200);
    let data = random_bytes(3 << 20, 21);
    let wrong = b64(Algorithm::Crc32, b"something else");
    let cases: [Case<'_>; 3] = [
        (
            "wrong value",
            &[("x-amz-checksum-crc32", wrong.as_str())],
            400,
            "BadDigest",
        ),
        ("trailer missing", &[], 400, "MalformedTrailerError"),
        (
            "not base64",
            &[("x-amz-checksum-crc32", "%%%")],
            400,
            "InvalidRequest",
        ),
    ];
    for (what, trailers, status, code) in cases {
        let body = aws_chunked(&data, 65536, trailers);
        let h = trailer_headers(data.len(), "x-amz-checksum-crc32");
        let r = put_with(&url, &h, &body);
        assert_eq!(
            (r.status, code_of(&r).as_str()),
            (status, code),
            "{what}: {}",
            r.text()
        );
        if code == "BadDigest" {
            assert!(r.text().contains("CRC32"), "{}", r.text());
        }
        assert_eq!(get(&url).unwrap().body, b"version one", "{what}");
        let r = put_with(&format!("{}/bod/new-{status}-{code}", c.url()), &h, &body);
        assert_eq!(r.status, status, "{what}");
        let g = get(&format!("{}/bod/new-{status}-{code}", c.url())).unwrap();
        assert_eq!(
            (g.status, code_of(&g).as_str()),
            (404, "NoSuchKey"),
            "{what}"
        );
    }
    // Truncated aws-chunked framing and a malformed size line.
    let mut cut = aws_chunked(&data[..1000], 500, &[]);
    cut.truncate(700);
    let r = put_with(&url, &trailer_headers(1000, "x-amz-checksum-crc32"), &cut);
    assert_eq!((r.status, code_of(&r).as_str()), (400, "IncompleteBody"));
    let r = put_with(
        &url,
        &trailer_headers(5, "x-amz-checksum-crc32"),
        b"zz\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!((r.status, code_of(&r).as_str()), (400, "InvalidRequest"));
    assert_eq!(get(&url).unwrap().body, b"version one");
    let listing = get(&format!("{}/bod", c.url())).unwrap().text();
    assert_eq!(xml_values(&listing, "Key"), vec!["key".to_string()]);
}

#[test]
fn content_md5_payload_sha256_and_checksum_headers_are_checked() {
    let dir = TempDir::new("body-headers");
    let mut c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "bod");
    let data = random_bytes(300_000, 31);
    let other = b"not the body";
    let base = c.url();
    let url = |k: &str| format!("{base}/bod/{k}");
    let absent = |k: &str| {
        let g = get(&url(k)).unwrap();
        assert_eq!((g.status, code_of(&g).as_str()), (404, "NoSuchKey"), "{k}");
    };
    let md5_b64 = |d: &[u8]| {
        use md5::{Digest, Md5};
        base64_encode(&Md5::digest(d))
    };

    // Content-MD5.
    let r = request(
        "PUT",
        &url("md5-bad"),
        &[("Content-MD5", &md5_b64(other))],
        Some(&data),
    )
    .unwrap();
    assert_eq!(
        (r.status, code_of(&r).as_str()),
        (400, "BadDigest"),
        "{}",
        r.text()
    );
    absent("md5-bad");
    let r = request(
        "PUT",
        &url("md5-invalid"),
        &[("Content-MD5", "nope")],
        Some(&data),
    )
    .unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (400, "InvalidDigest"));
    absent("md5-invalid");
    let r = request(
        "PUT",
        &url("md5-ok"),
        &[("Content-MD5", &md5_b64(&data))],
        Some(&data),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&url("md5-ok")).unwrap().body, data);

    // x-amz-content-sha256 as a payload hash.
    let r = request(
        "PUT",
        &url("sha-bad"),
        &[("x-amz-content-sha256", &sha256_hex(other))],
        Some(&data),
    )
    .unwrap();
    assert_eq!(
        (r.status, code_of(&r).as_str()),
        (400, "XAmzContentSHA256Mismatch"),
        "{}",
        r.text()
    );
    absent("sha-bad");
    let r = request(
        "PUT",
        &url("sha-ok"),
        &[("x-amz-content-sha256", &sha256_hex(&data))],
        Some(&data),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(get(&url("sha-ok")).unwrap().body, data);

    // Each checksum header, right and wrong; a wrong one leaves the previous version.
    for alg in Algorithm::ALL {
        let key = format!("sum-{}", alg.name());
        let header = alg.header();
        assert_eq!(put(&url(&key), b"previous").unwrap().status, 200);
        let wrong = b64(alg, other);
        let r = request("PUT", &url(&key), &[(&header, &wrong)], Some(&data)).unwrap();
        assert_eq!(
            (r.status, code_of(&r).as_str()),
            (400, "BadDigest"),
            "{header}"
        );
        assert!(
            r.text().contains(&alg.name().to_ascii_uppercase()),
            "{header}: {}",
            r.text()
        );
        assert_eq!(get(&url(&key)).unwrap().body, b"previous", "{header}");
        let right = b64(alg, &data);
        let r = request(
            "PUT",
            &url(&key),
            &[
                (&header, &right),
                (
                    "x-amz-sdk-checksum-algorithm",
                    &alg.name().to_ascii_uppercase(),
                ),
            ],
            Some(&data),
        )
        .unwrap();
        assert_eq!(r.status, 200, "{header}: {}", r.text());
        assert_eq!(r.header(&header), Some(right.as_str()));
        let h = request(
            "HEAD",
            &url(&key),
            &[("x-amz-checksum-mode", "enabled")],
            None,
        )
        .unwrap();
        assert_eq!(h.header(&header), Some(right.as_str()), "{header}");
        assert_eq!(get(&url(&key)).unwrap().body, data);
    }
    // Two checksums at once are refused before the body is read.
    let r = request(
        "PUT",
        &url("two"),
        &[
            ("x-amz-checksum-crc32", &b64(Algorithm::Crc32, &data)),
            ("x-amz-checksum-sha256", &b64(Algorithm::Sha256, &data)),
        ],
        Some(&data),
    )
    .unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (400, "InvalidRequest"));
    absent("two");
    // The checksum survives a director restart (it is in the journal record).
    c.director.kill();
    c.director.restart();
    let h = request(
        "HEAD",
        &url("sum-crc64nvme"),
        &[("x-amz-checksum-mode", "ENABLED")],
        None,
    )
    .unwrap();
    assert_eq!(
        h.header("x-amz-checksum-crc64nvme"),
        Some(b64(Algorithm::Crc64Nvme, &data).as_str())
    );
}

/// botocore sends `Expect: 100-continue` on every upload and waits for the interim answer;
/// curl sends it for large bodies.
#[test]
fn expect_100_continue_is_answered_and_curl_uploads_work() {
    let dir = TempDir::new("body-expect");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "bod");
    let data = random_bytes(100_000, 41);
    // By hand: the interim 100 comes before a byte of the body is sent.
    let mut s = TcpStream::connect(("127.0.0.1", c.director.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "PUT /bod/expect.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\nExpect: 100-continue\r\n\
         Content-Length: {}\r\nx-amz-checksum-crc32: {}\r\n\r\n",
        data.len(),
        b64(Algorithm::Crc32, &data)
    );
    s.write_all(head.as_bytes()).unwrap();
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed before 100 Continue");
        interim.push(byte[0]);
    }
    let interim = String::from_utf8_lossy(&interim).into_owned();
    assert!(
        interim.starts_with("HTTP/1.1 100 Continue\r\n"),
        "{interim}"
    );
    s.write_all(&data).unwrap();
    let mut rest = String::new();
    let _ = s.read_to_string(&mut rest);
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");
    assert_eq!(
        get(&format!("{}/bod/expect.bin", c.url())).unwrap().body,
        data
    );

    // curl --data-binary with Expect: 100-continue.
    let curl = Command::new("curl").arg("--version").output();
    assert!(
        curl.is_ok_and(|o| o.status.success()),
        "this test needs curl: apt-get install curl"
    );
    let file = dir.path().join("upload.bin");
    std::fs::write(&file, &data).unwrap();
    let out = Command::new("curl")
        .args([
            "-sS",
            "-v",
            "-X",
            "PUT",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
        ])
        .arg(format!("@{}", file.display()))
        .args([
            "-H",
            &format!("Content-MD5: {}", {
                use md5::{Digest, Md5};
                base64_encode(&Md5::digest(&data))
            }),
        ])
        .arg(format!("{}/bod/curl.bin", c.url()))
        .output()
        .unwrap();
    let verbose = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{verbose}");
    assert!(verbose.contains("HTTP/1.1 100 Continue"), "{verbose}");
    assert!(verbose.contains("HTTP/1.1 200"), "{verbose}");
    assert_eq!(
        get(&format!("{}/bod/curl.bin", c.url())).unwrap().body,
        data
    );
}
