//! The decoder against the AWS documentation's streaming examples, a test signature chain
//! (HMAC-SHA256 written out with sha2), and every malformed or mismatching body.

use super::*;
use crate::checksum::digest;
use md5::Md5;

const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const TIMESTAMP: &str = "20130524T000000Z";
const SCOPE: &str = "20130524/us-east-1/s3/aws4_request";
/// Seed signatures of the two examples in the AWS SigV4 streaming documentation.
const SEED_PAYLOAD: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const SEED_TRAILER: &str = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn signing_key() -> [u8; 32] {
    let k = hmac(format!("AWS4{SECRET}").as_bytes(), b"20130524");
    let k = hmac(&k, b"us-east-1");
    let k = hmac(&k, b"s3");
    hmac(&k, b"aws4_request")
}

/// What the auth module will implement: each signature chains on the previous one.
struct TestChain {
    key: [u8; 32],
    prev: String,
}

impl TestChain {
    fn boxed(seed: &str) -> Option<Box<dyn SignatureChain>> {
        Some(Box::new(TestChain {
            key: signing_key(),
            prev: seed.to_string(),
        }))
    }
    fn sign(&mut self, sts: String) -> String {
        self.prev = to_hex(&hmac(&self.key, sts.as_bytes()));
        self.prev.clone()
    }
}

impl SignatureChain for TestChain {
    fn chunk(&mut self, data_sha256_hex: &str) -> String {
        let empty = to_hex(&Sha256::digest(b""));
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{TIMESTAMP}\n{SCOPE}\n{}\n{empty}\n{data_sha256_hex}",
            self.prev
        );
        self.sign(sts)
    }
    fn trailer(&mut self, trailer_sha256_hex: &str) -> String {
        let sts = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{TIMESTAMP}\n{SCOPE}\n{}\n{trailer_sha256_hex}",
            self.prev
        );
        self.sign(sts)
    }
}

/// Hands out one byte per read, so every boundary falls between two reads.
struct OneByte<R>(R);

impl<R: Read> Read for OneByte<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(1);
        self.0.read(&mut buf[..n])
    }
}

type Outcome = std::result::Result<(Vec<u8>, Option<(String, String)>), (u16, &'static str)>;

/// Reads `body` through `open` with `headers`; the decoded bytes and checksum, or the
/// refusal's status and code.
fn run_with(
    headers: &[(&str, &str)],
    body: &[u8],
    chain: Option<Box<dyn SignatureChain>>,
    one_byte: bool,
    body_len: Option<u64>,
) -> Outcome {
    let mut cursor = io::Cursor::new(body.to_vec());
    let mut slow = OneByte(io::Cursor::new(body.to_vec()));
    let reader: &mut dyn Read = if one_byte { &mut slow } else { &mut cursor };
    let mut req = Request {
        method: "PUT".into(),
        path: "/b/k".into(),
        query: String::new(),
        params: Default::default(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: reader,
        body_len,
        remote: None,
    };
    let code = |e: DirectorError| {
        let (s, c) = e.status_and_code();
        (s, c)
    };
    let mut b = open(&mut req, chain).map_err(code)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; if one_byte { 7 } else { 100_000 }];
    loop {
        match b.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                // A failed body keeps failing.
                let again = b.read(&mut buf).expect_err("a second read after an error");
                assert_eq!(
                    director_error(&again).status_and_code(),
                    director_error(&e).status_and_code()
                );
                return Err(code(director_error(&e)));
            }
        }
    }
    assert_eq!(b.read(&mut buf).unwrap(), 0, "EOF is sticky");
    Ok((out, b.checksum()))
}

/// Runs both with large reads and one byte at a time; both must agree.
fn run(headers: &[(&str, &str)], body: &[u8], seed: Option<&str>) -> Outcome {
    let fast = run_with(headers, body, seed.and_then(TestChain::boxed), false, None);
    let slow = run_with(headers, body, seed.and_then(TestChain::boxed), true, None);
    assert_eq!(fast, slow, "one-byte reads decode differently");
    fast
}

fn chunk(data: &[u8], sig: Option<&str>) -> Vec<u8> {
    let mut v = format!("{:x}", data.len()).into_bytes();
    if let Some(s) = sig {
        v.extend_from_slice(format!(";chunk-signature={s}").as_bytes());
    }
    v.extend_from_slice(b"\r\n");
    v.extend_from_slice(data);
    v.extend_from_slice(b"\r\n");
    v
}

const SIGNED: [(&str, &str); 3] = [
    ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
    ("content-encoding", "aws-chunked"),
    ("x-amz-decoded-content-length", "66560"),
];

fn payload_example() -> Vec<u8> {
    let mut body = chunk(
        &[b'a'; 65536],
        Some("ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"),
    );
    body.extend(chunk(
        &[b'a'; 1024],
        Some("0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"),
    ));
    body.extend_from_slice(
        b"0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n",
    );
    body
}

#[test]
fn the_aws_signed_streaming_example_decodes_and_verifies() {
    let (data, sum) = run(&SIGNED, &payload_example(), Some(SEED_PAYLOAD)).unwrap();
    assert_eq!(data, vec![b'a'; 66560]);
    assert_eq!(sum, None);
    // Without Content-Encoding (minio-go, restic), recognised from x-amz-content-sha256.
    let (data, _) = run(
        &[SIGNED[0], SIGNED[2]],
        &payload_example(),
        Some(SEED_PAYLOAD),
    )
    .unwrap();
    assert_eq!(data.len(), 66560);
}

#[test]
fn a_changed_byte_or_signature_is_signature_does_not_match() {
    let mut body = payload_example();
    let i = body.len() - 200;
    body[i] = b'b';
    assert_eq!(
        run(&SIGNED, &body, Some(SEED_PAYLOAD)),
        Err((403, "SignatureDoesNotMatch"))
    );
    let body = String::from_utf8(payload_example())
        .unwrap()
        .replace("b6c6ea8a", "b6c6ea8b");
    assert_eq!(
        run(&SIGNED, body.as_bytes(), Some(SEED_PAYLOAD)),
        Err((403, "SignatureDoesNotMatch"))
    );
    // A chunk without a signature, in a signed body.
    let mut body = chunk(&[b'a'; 10], None);
    body.extend_from_slice(b"0\r\n\r\n");
    let h = [SIGNED[0], ("x-amz-decoded-content-length", "10")];
    assert_eq!(
        run(&h, &body, Some(SEED_PAYLOAD)),
        Err((403, "SignatureDoesNotMatch"))
    );
    // With no chain (a director without keys) the same body is decoded, unchecked.
    assert_eq!(run(&h, &body, None).unwrap().0, vec![b'a'; 10]);
}

fn trailer_example(blank_after_last: bool) -> Vec<u8> {
    let mut body = chunk(
        &[b'a'; 65536],
        Some("b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2"),
    );
    body.extend(chunk(
        &[b'a'; 1024],
        Some("1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7"),
    ));
    body.extend_from_slice(
        b"0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n",
    );
    if blank_after_last {
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"x-amz-checksum-crc32c:sOO8/Q==\r\nx-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n");
    body
}

const SIGNED_TRAILER: [(&str, &str); 4] = [
    (
        "x-amz-content-sha256",
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    ),
    ("content-encoding", "aws-chunked"),
    ("x-amz-decoded-content-length", "66560"),
    ("x-amz-trailer", "x-amz-checksum-crc32c"),
];

#[test]
fn the_aws_signed_trailer_example_verifies_chunks_trailer_and_checksum() {
    // As the AWS documentation shows it (an empty line after the last chunk) and as the
    // SDKs send it (none).
    for blank in [true, false] {
        let (data, sum) =
            run(&SIGNED_TRAILER, &trailer_example(blank), Some(SEED_TRAILER)).unwrap();
        assert_eq!(data.len(), 66560);
        assert_eq!(sum, Some(("crc32c".into(), "sOO8/Q==".into())));
    }
    let bad_sig = String::from_utf8(trailer_example(false))
        .unwrap()
        .replace("d81f82fc", "d81f82fd");
    assert_eq!(
        run(&SIGNED_TRAILER, bad_sig.as_bytes(), Some(SEED_TRAILER)),
        Err((403, "SignatureDoesNotMatch"))
    );
    // A different checksum value changes what was signed too.
    let bad_sum = String::from_utf8(trailer_example(false))
        .unwrap()
        .replace("sOO8/Q==", "AAAAAA==");
    assert_eq!(
        run(&SIGNED_TRAILER, bad_sum.as_bytes(), Some(SEED_TRAILER)),
        Err((403, "SignatureDoesNotMatch"))
    );
    // Without a chain the signature is not checked, but the checksum still is.
    assert_eq!(
        run(&SIGNED_TRAILER, bad_sum.as_bytes(), None),
        Err((400, "BadDigest"))
    );
}

const UNSIGNED_TRAILER: [(&str, &str); 4] = [
    ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
    ("content-encoding", "aws-chunked"),
    ("x-amz-decoded-content-length", "100000"),
    ("x-amz-trailer", "x-amz-checksum-crc32"),
];

fn unsigned_body(data: &[u8], trailer: &str) -> Vec<u8> {
    let mut body = Vec::new();
    for piece in data.chunks(65536) {
        body.extend(chunk(piece, None));
    }
    body.extend_from_slice(b"0\r\n");
    body.extend_from_slice(trailer.as_bytes());
    body.extend_from_slice(b"\r\n");
    body
}

#[test]
fn unsigned_trailer_checksums_are_verified() {
    let data = crate::hash::Hash::of(b"seed").0.repeat(3125); // 100 000 bytes
    let crc = base64_encode(&digest(Algorithm::Crc32, &data));
    let body = unsigned_body(&data, &format!("x-amz-checksum-crc32:{crc}\r\n"));
    let (got, sum) = run(&UNSIGNED_TRAILER, &body, None).unwrap();
    assert_eq!(got, data);
    assert_eq!(sum, Some(("crc32".into(), crc.clone())));
    // A space after the colon is allowed.
    let body = unsigned_body(&data, &format!("x-amz-checksum-crc32: {crc}\r\n"));
    assert!(run(&UNSIGNED_TRAILER, &body, None).is_ok());
    // Wrong value.
    let body = unsigned_body(&data, "x-amz-checksum-crc32:AAAAAA==\r\n");
    assert_eq!(run(&UNSIGNED_TRAILER, &body, None), Err((400, "BadDigest")));
    // Announced, never sent.
    let body = unsigned_body(&data, "");
    assert_eq!(
        run(&UNSIGNED_TRAILER, &body, None),
        Err((400, "MalformedTrailerError"))
    );
    // Not the trailer announced.
    let c = base64_encode(&digest(Algorithm::Crc32c, &data));
    let body = unsigned_body(&data, &format!("x-amz-checksum-crc32c:{c}\r\n"));
    assert_eq!(
        run(&UNSIGNED_TRAILER, &body, None),
        Err((400, "MalformedTrailerError"))
    );
    // Not base64 / wrong length.
    let body = unsigned_body(&data, "x-amz-checksum-crc32:AAAA\r\n");
    assert_eq!(
        run(&UNSIGNED_TRAILER, &body, None),
        Err((400, "InvalidRequest"))
    );
    // Not name:value.
    let body = unsigned_body(&data, "garbage\r\n");
    assert_eq!(
        run(&UNSIGNED_TRAILER, &body, None),
        Err((400, "MalformedTrailerError"))
    );
}

#[test]
fn every_checksum_algorithm_as_a_trailer() {
    let data = b"hello, trailers".repeat(1000);
    for alg in Algorithm::ALL {
        let value = base64_encode(&digest(alg, &data));
        let len = data.len().to_string();
        let header = alg.header();
        let h = [
            UNSIGNED_TRAILER[0],
            ("x-amz-decoded-content-length", len.as_str()),
            ("x-amz-trailer", header.as_str()),
            ("x-amz-sdk-checksum-algorithm", &alg.name().to_uppercase()),
        ];
        let body = unsigned_body(&data, &format!("{header}:{value}\r\n"));
        let (_, sum) = run(&h, &body, None).unwrap();
        assert_eq!(sum, Some((alg.name().to_string(), value)));
    }
}

#[test]
fn malformed_framing_is_refused_with_a_code() {
    let h = [
        ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
        ("x-amz-decoded-content-length", "5"),
    ];
    let case = |body: &[u8]| run(&h, body, None);
    // The good one first.
    assert_eq!(case(b"5\r\nhello\r\n0\r\n\r\n").unwrap().0, b"hello");
    // Bad hex sizes.
    for bad in [
        &b"zz\r\nhello\r\n0\r\n\r\n"[..],
        b"\r\nhello",
        b"-5\r\nhello",
        b"0x5\r\nhello",
    ] {
        assert_eq!(case(bad), Err((400, "InvalidRequest")), "{bad:?}");
    }
    assert_eq!(
        case(b"10000000000000005\r\nhello\r\n0\r\n\r\n"),
        Err((400, "InvalidRequest"))
    );
    // A header line longer than the cap, never buffered whole.
    let mut long = b"5;".to_vec();
    long.extend(vec![b'x'; LINE_BYTES_MAX + 10]);
    long.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
    assert_eq!(case(&long), Err((400, "InvalidRequest")));
    let mut endless = b"5".to_vec();
    endless.extend(vec![b' '; 1 << 20]);
    assert_eq!(case(&endless), Err((400, "InvalidRequest")));
    // Chunk data longer than its size line.
    assert_eq!(
        case(b"4\r\nhello\r\n0\r\n\r\n"),
        Err((400, "InvalidRequest"))
    );
    // Truncated: inside data, after data, before the last chunk, inside a line.
    for cut in [
        &b"5\r\nhel"[..],
        b"5\r\nhello",
        b"5\r\nhello\r\n",
        b"5\r\nhello\r\n0;chunk",
    ] {
        assert_eq!(case(cut), Err((400, "IncompleteBody")), "{cut:?}");
    }
    // More or less than x-amz-decoded-content-length.
    assert_eq!(
        case(b"6\r\nhello!\r\n0\r\n\r\n"),
        Err((400, "IncompleteBody"))
    );
    assert_eq!(
        case(b"4\r\nhell\r\n0\r\n\r\n"),
        Err((400, "IncompleteBody"))
    );
    // Bytes after the closing line (in the trailer form they would be a trailer line).
    let no_trailer = [
        ("content-encoding", "aws-chunked"),
        ("x-amz-decoded-content-length", "5"),
    ];
    assert_eq!(
        run(&no_trailer, b"5\r\nhello\r\n0\r\n\r\nextra", None),
        Err((400, "InvalidRequest"))
    );
    assert_eq!(
        case(b"5\r\nhello\r\n0\r\n\r\nextra\r\n\r\n"),
        Err((400, "MalformedTrailerError"))
    );
    // The end of the body in place of the closing empty line is accepted.
    assert_eq!(case(b"5\r\nhello\r\n0\r\n").unwrap().0, b"hello");
    // Unknown length (Transfer-Encoding: chunked without x-amz-decoded-content-length).
    let h = [("content-encoding", "aws-chunked")];
    assert_eq!(
        run(&h, b"5\r\nhello\r\n3\r\n!!!\r\n0\r\n\r\n", None)
            .unwrap()
            .0,
        b"hello!!!"
    );
}

fn plain(headers: &[(&str, &str)], body: &[u8]) -> Outcome {
    let len = Some(body.len() as u64);
    let fast = run_with(headers, body, None, false, len);
    let slow = run_with(headers, body, None, true, len);
    assert_eq!(fast, slow);
    fast
}

#[test]
fn plain_bodies_check_sha256_md5_and_checksum_headers() {
    let data = b"The quick brown fox jumps over the lazy dog";
    let sha = to_hex(&Sha256::digest(data));
    let md5 = base64_encode(&Md5::digest(data));
    assert_eq!(
        plain(
            &[("x-amz-content-sha256", &sha), ("content-md5", &md5)],
            data
        )
        .unwrap()
        .0,
        data
    );
    let upper = sha.to_uppercase();
    assert!(plain(&[("x-amz-content-sha256", &upper)], data).is_ok());
    let other = to_hex(&Sha256::digest(b"other"));
    assert_eq!(
        plain(&[("x-amz-content-sha256", &other)], data),
        Err((400, "XAmzContentSHA256Mismatch"))
    );
    assert_eq!(
        plain(&[("x-amz-content-sha256", "nonsense")], data),
        Err((400, "InvalidArgument"))
    );
    assert!(plain(&[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")], data).is_ok());
    // Content-MD5 is compared by the writer with the MD5 it computes for the ETag (one
    // MD5 per body): the reader keeps the announced digest, check_content_md5 compares.
    let got: [u8; 16] = Md5::digest(data).into();
    let other: [u8; 16] = Md5::digest(b"other").into();
    assert!(check_content_md5(None, &got).is_ok());
    assert!(check_content_md5(Some(got), &got).is_ok());
    assert_eq!(
        check_content_md5(Some(other), &got)
            .unwrap_err()
            .status_and_code(),
        (400, "BadDigest")
    );
    for bad in ["not base64!", "AAAA"] {
        assert_eq!(
            plain(&[("content-md5", bad)], data),
            Err((400, "InvalidDigest"))
        );
    }
    for alg in Algorithm::ALL {
        let good = base64_encode(&digest(alg, data));
        let wrong = base64_encode(&digest(alg, b"other"));
        let name = alg.header();
        let (_, sum) = plain(&[(&name, &good)], data).unwrap();
        assert_eq!(sum, Some((alg.name().to_string(), good.clone())));
        assert_eq!(plain(&[(&name, &wrong)], data), Err((400, "BadDigest")));
        assert_eq!(
            plain(&[(&name, "AA==")], data),
            Err((400, "InvalidRequest"))
        );
    }
    // The BadDigest message names the algorithm.
    let mut cursor = io::Cursor::new(data.to_vec());
    let mut req = Request {
        method: "PUT".into(),
        path: "/b/k".into(),
        query: String::new(),
        params: Default::default(),
        headers: vec![("x-amz-checksum-crc32c".into(), "AAAAAA==".into())],
        body: &mut cursor,
        body_len: None,
        remote: None,
    };
    let mut b = open(&mut req, None).unwrap();
    let e = io::copy(&mut b, &mut io::sink()).unwrap_err();
    assert!(director_error(&e).to_string().contains("CRC32C"), "{e}");
}

#[test]
fn inconsistent_checksum_headers_are_refused_before_reading() {
    let data = b"abc";
    let crc = base64_encode(&digest(Algorithm::Crc32, data));
    let sha = base64_encode(&digest(Algorithm::Sha256, data));
    let cases: [&[(&str, &str)]; 5] = [
        &[
            ("x-amz-checksum-crc32", &crc),
            ("x-amz-checksum-sha256", &sha),
        ],
        &[("x-amz-sdk-checksum-algorithm", "CRC32")],
        &[
            ("x-amz-sdk-checksum-algorithm", "SHA256"),
            ("x-amz-checksum-crc32", &crc),
        ],
        &[
            ("x-amz-sdk-checksum-algorithm", "MD5"),
            ("x-amz-checksum-crc32", &crc),
        ],
        &[("x-amz-trailer", "x-amz-checksum-crc32")],
    ];
    for h in cases {
        assert_eq!(plain(h, data), Err((400, "InvalidRequest")), "{h:?}");
    }
    assert!(
        plain(
            &[
                ("x-amz-sdk-checksum-algorithm", "crc32"),
                ("x-amz-checksum-crc32", &crc)
            ],
            data
        )
        .is_ok()
    );
    // Unknown trailers, and two checksums (one header, one trailer).
    let t = [UNSIGNED_TRAILER[0], ("x-amz-trailer", "x-amz-meta-foo")];
    assert_eq!(run(&t, b"0\r\n\r\n", None), Err((400, "InvalidRequest")));
    let t = [
        UNSIGNED_TRAILER[0],
        ("x-amz-trailer", "x-amz-checksum-crc32"),
        ("x-amz-checksum-crc32", &crc),
    ];
    assert_eq!(run(&t, b"0\r\n\r\n", None), Err((400, "InvalidRequest")));
    // SigV4a streaming is not offered.
    let t = [(
        "x-amz-content-sha256",
        "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
    )];
    assert_eq!(run(&t, b"0\r\n\r\n", None), Err((501, "NotImplemented")));
    // A payload hash with aws-chunked framing.
    let hex = to_hex(&Sha256::digest(data));
    let t = [
        ("x-amz-content-sha256", hex.as_str()),
        ("content-encoding", "aws-chunked"),
    ];
    assert_eq!(run(&t, b"0\r\n\r\n", None), Err((400, "InvalidRequest")));
    let t = [
        UNSIGNED_TRAILER[0],
        ("x-amz-decoded-content-length", "five"),
    ];
    assert_eq!(run(&t, b"0\r\n\r\n", None), Err((400, "InvalidArgument")));
}

#[test]
fn a_short_plain_body_is_incomplete_and_transport_errors_map_to_incomplete_body() {
    let r = run_with(&[], b"abc", None, false, Some(10));
    assert_eq!(r, Err((400, "IncompleteBody")));
    let e = io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed");
    assert_eq!(
        director_error(&e).status_and_code(),
        (400, "IncompleteBody")
    );
}

#[test]
fn aws_chunked_is_dropped_from_the_stored_content_encoding() {
    assert_eq!(stored_content_encoding("aws-chunked"), None);
    assert_eq!(
        stored_content_encoding("aws-chunked, gzip").as_deref(),
        Some("gzip")
    );
    assert_eq!(stored_content_encoding("gzip").as_deref(), Some("gzip"));
    // Without aws-chunked, the value is the object's own, byte for byte.
    assert_eq!(
        stored_content_encoding("deflate, gzip").as_deref(),
        Some("deflate, gzip")
    );
    assert_eq!(
        stored_content_encoding("gzip,aws-chunked,br").as_deref(),
        Some("gzip, br")
    );
    assert_eq!(stored_content_encoding(" "), None);
}

#[test]
fn small_bodies_are_read_whole_and_longer_ones_refused_not_cut() {
    let small = |data: &[u8], max: u64| {
        let mut cursor = std::io::Cursor::new(data.to_vec());
        let mut req = Request {
            method: "POST".into(),
            path: "/b".into(),
            query: String::new(),
            params: Default::default(),
            headers: Vec::new(),
            body: &mut cursor,
            body_len: Some(data.len() as u64),
            remote: None,
        };
        read_small(&mut req, max, |max| {
            DirectorError::BadRequest("MaxMessageLengthExceeded", format!("over {max}"))
        })
    };
    assert_eq!(small(b"12345", 5).unwrap(), b"12345");
    assert_eq!(small(b"", 5).unwrap(), b"");
    match small(b"123456", 5) {
        Err(DirectorError::BadRequest(code, msg)) => {
            assert_eq!(code, "MaxMessageLengthExceeded");
            assert_eq!(msg, "over 5");
        }
        other => panic!("not refused: {other:?}"),
    }
}
