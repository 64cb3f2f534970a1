//! Objects larger than 4 GiB (issue 7): on a 32-bit board (armv7) `usize` is 32 bits and
//! tiny_http counts body lengths in `usize`, so every length above 4 GiB must travel as a
//! u64 of our own. Run against the armv7 build with
//! `CROSS_TEST_LARGE=1 make cross-test CROSS_ARCHS=armv7` (cross/README.md); natively it
//! runs with `cargo test --test large_object -- --ignored`.
//!
//! Needs about 2 x 4.5 GiB of free disk under the test directory (`DPYFS_TEST_TMP`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// 4.5 GiB: past 2^32, and not a multiple of any chunk size.
const LEN: u64 = (9 << 29) + 12_345;
const SEED: u64 = 4242;

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout_read(Duration::from_secs(600))
        .timeout_write(Duration::from_secs(600))
        .build()
}

/// `len` bytes of the object at `offset`, from the same deterministic stream.
fn expected_slice(offset: u64, len: usize) -> Vec<u8> {
    let mut g = GenReader::new(LEN, SEED);
    std::io::copy(&mut (&mut g).take(offset), &mut std::io::sink()).unwrap();
    let mut v = vec![0u8; len];
    g.read_exact(&mut v).unwrap();
    v
}

#[test]
#[ignore = "writes 9 GiB; run on purpose (CROSS_TEST_LARGE=1 make cross-test)"]
fn object_larger_than_4_gib_round_trips() {
    let dir = TempDir::new("large");
    let c = Cluster::start(&dir, 3, 2, &[]);
    let bucket = format!("{}/big", c.url());
    assert_eq!(put(&bucket, b"").unwrap().status, 200);
    let url = format!("{bucket}/huge.bin");

    // Upload with Transfer-Encoding: chunked (ureq's send(reader)): the only way a body
    // over 4 GiB reaches a 32-bit tiny_http intact.
    let t0 = Instant::now();
    let r = agent().put(&url).send(GenReader::new(LEN, SEED)).unwrap();
    assert_eq!(r.status(), 200);
    let put_secs = t0.elapsed().as_secs_f64();
    // The director's own account of the size, as a u64.
    let obj = get(&format!("{}/_dpyfs/object/big/huge.bin", c.url()))
        .unwrap()
        .json();
    assert_eq!(obj["size"].as_u64(), Some(LEN), "{obj}");

    // A range across the 4 GiB line.
    let off = (1u64 << 32) - 10;
    let r = request(
        "GET",
        &url,
        &[("Range", &format!("bytes={off}-{}", off + 19))],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 206, "{}", r.text());
    assert_eq!(r.body, expected_slice(off, 20), "bytes around 4 GiB differ");
    // The last bytes, by a suffix range.
    let r = request("GET", &url, &[("Range", "bytes=-7")], None).unwrap();
    assert_eq!(r.status, 206);
    assert_eq!(r.body, expected_slice(LEN - 7, 7));

    // The whole object back, hashed as it streams.
    let t1 = Instant::now();
    let resp = agent().get(&url).call().unwrap();
    assert_eq!(resp.status(), 200);
    let (n, got) = sha256_of_reader(&mut resp.into_reader());
    let get_secs = t1.elapsed().as_secs_f64();
    let (_, want) = sha256_of_reader(&mut GenReader::new(LEN, SEED));
    assert_eq!(n, LEN, "length read back");
    assert_eq!(got, want, "content read back");
    let mib = LEN as f64 / (1 << 20) as f64;
    eprintln!(
        "{LEN} bytes: PUT {put_secs:.0} s ({:.1} MiB/s), GET {get_secs:.0} s ({:.1} MiB/s)",
        mib / put_secs,
        mib / get_secs
    );

    // The listing gives the size as a u64.
    let l = get(&format!("{bucket}?list-type=2")).unwrap().text();
    assert_eq!(xml_values(&l, "Size"), [LEN.to_string()]);
    // HEAD: the full length as Content-Length (tiny_http drops a Content-Length header
    // that does not parse as usize, and sends chunked instead).
    let h = request("HEAD", &url, &[], None).unwrap();
    assert_eq!(h.status, 200);
    eprintln!("HEAD headers: {:?}", h.headers);
    assert_eq!(
        h.header("content-length"),
        Some(LEN.to_string().as_str()),
        "HEAD must give the full length"
    );
    assert_eq!(request("DELETE", &url, &[], None).unwrap().status, 204);
}

/// A plain `Content-Length` above 4 GiB: a 32-bit tiny_http cannot parse it into usize and
/// hands over an empty body; the director must refuse rather than store an empty object.
/// Sends the header and 1 MiB, then ends the connection: cheap, no 4 GiB needed.
#[test]
fn content_length_over_4_gib_is_never_stored_short() {
    let dir = TempDir::new("large-cl");
    let c = Cluster::start(&dir, 3, 2, &[]);
    let bucket = format!("{}/big", c.url());
    assert_eq!(put(&bucket, b"").unwrap().status, 200);
    let mut s = TcpStream::connect(("127.0.0.1", c.director.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "PUT /big/cl.bin HTTP/1.1\r\nHost: x\r\nContent-Length: {LEN}\r\n\r\n"
    )
    .unwrap();
    // The server may answer (and close) before reading it all: errors are fine here.
    let _ = s.write_all(&random_bytes(1 << 20, 9));
    let _ = s.shutdown(Shutdown::Write);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    eprintln!("answer: {}", answer.lines().next().unwrap_or(""));
    assert!(
        !answer.starts_with("HTTP/1.1 200"),
        "a short body was acknowledged: {answer}"
    );
    let g = get(&format!("{bucket}/cl.bin")).unwrap();
    assert_eq!(
        g.status,
        404,
        "an object was stored from a short body ({} bytes)",
        g.body.len()
    );
}
