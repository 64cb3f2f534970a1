//! The storage daemon, tested through its real binary on 127.0.0.1 (issue 2).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A store on `dir/data`; on HTTPS with mutual TLS under `DPYFS_TEST_TLS=1` (the test
/// agent presents the test CA's certificate), as `make test-tls` runs a subset of this file.
fn start_store(dir: &TempDir, extra: &[&str]) -> Daemon {
    let data = dir.path().join("data");
    let mut args = vec![
        "--listen",
        "127.0.0.1:{port}",
        "--data",
        data.to_str().unwrap(),
    ];
    if !extra.contains(&"--reserve") {
        args.extend_from_slice(&["--reserve", "0"]);
    }
    let tls = tls_default().map(TestCa::store_args).unwrap_or_default();
    args.extend(tls.iter().map(String::as_str));
    args.extend_from_slice(extra);
    Daemon::start("dpyfs-store", &args, dir.path())
}

fn chunk_url(d: &Daemon, hex: &str) -> String {
    format!("{}/chunks/{hex}", d.url())
}

fn data_dir(dir: &TempDir) -> std::path::PathBuf {
    dir.path().join("data")
}

fn assert_nothing_stored(dir: &TempDir) {
    let d = data_dir(dir);
    assert!(
        files_under(&d.join("chunks")).is_empty(),
        "chunks/ not empty"
    );
    assert!(files_under(&d.join("tmp")).is_empty(), "tmp/ not empty");
}

#[test]
fn round_trips_of_empty_small_and_large_chunks() {
    let dir = TempDir::new("store-rt");
    let s = start_store(&dir, &[]);
    for (i, len) in [0usize, 1, 1 << 20, 8 << 20].into_iter().enumerate() {
        let data = random_bytes(len, i as u64 + 1);
        let hex = sha256_hex(&data);
        let url = chunk_url(&s, &hex);
        assert_eq!(
            put(&url, &data).unwrap().status,
            201,
            "first PUT of {len} bytes"
        );
        assert_eq!(
            put(&url, &data).unwrap().status,
            200,
            "second PUT is a no-op"
        );
        let got = get(&url).unwrap();
        assert_eq!(got.status, 200);
        assert_eq!(got.body.len(), len);
        assert!(got.body == data, "bytes differ for {len}-byte chunk");
        if len > 10 {
            let r = request("GET", &url, &[("Range", "bytes=2-9")], None).unwrap();
            assert_eq!(r.status, 206);
            assert_eq!(r.body, data[2..10]);
        }
        let head = request("HEAD", &url, &[], None).unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(
            head.header("content-length"),
            Some(len.to_string().as_str())
        );
        // The file lives at chunks/ab/cd/<hash> and sha256sum prints its own name.
        let path = data_dir(&dir).join(format!("chunks/{}/{}/{hex}", &hex[0..2], &hex[2..4]));
        let out = std::process::Command::new("sha256sum")
            .arg(&path)
            .output()
            .unwrap();
        let line = String::from_utf8(out.stdout).unwrap();
        assert!(line.starts_with(&hex), "sha256sum printed {line}");
    }
    let st = get(&format!("{}/status", s.url())).unwrap().json();
    assert_eq!(st["chunks"]["count"], 4);
    assert_eq!(st["chunks"]["bytes"], 1 + (1 << 20) + (8 << 20));
}

#[test]
fn wrong_hash_is_refused_and_leaves_nothing() {
    let dir = TempDir::new("store-422");
    let s = start_store(&dir, &[]);
    let data = random_bytes(100_000, 7);
    let wrong = sha256_hex(b"something else");
    let r = put(&chunk_url(&s, &wrong), &data).unwrap();
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["code"], "HashMismatch");
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("nothing was stored")
    );
    assert_nothing_stored(&dir);
}

#[test]
fn malformed_names_are_refused() {
    let dir = TempDir::new("store-400");
    let s = start_store(&dir, &[]);
    let good = sha256_hex(b"x");
    for name in [
        good.to_uppercase(),
        good[..63].to_string(),
        format!("{good}0"),
        "zz".repeat(32),
        "../../store.json".into(),
        "%2e%2e%2fstore.json".into(),
    ] {
        for method in ["PUT", "GET", "HEAD", "DELETE"] {
            // Raw requests: an HTTP library would normalise `..` away before sending.
            let req = format!(
                "{method} /chunks/{name} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
            );
            let answer = raw(s.port, req.as_bytes(), Duration::from_secs(10));
            assert!(
                answer.starts_with("HTTP/1.1 400"),
                "{method} {name}: {answer}"
            );
            if method != "HEAD" {
                assert!(answer.contains("InvalidChunkName"), "{answer}");
            }
        }
    }
    assert_nothing_stored(&dir);
}

#[test]
fn oversize_chunks_are_refused_while_streaming() {
    let dir = TempDir::new("store-413");
    let s = start_store(&dir, &["--max-chunk", "1M"]);
    let data = random_bytes((1 << 20) + 1, 3);
    let url = chunk_url(&s, &sha256_hex(&data));
    // With a Content-Length, refused before reading.
    let r = put(&url, &data).unwrap();
    assert_eq!(r.status, 413);
    assert_eq!(r.json()["code"], "ChunkTooLarge");
    // Chunked, no length known: refused when the limit is crossed.
    let r = ureq::put(&url)
        .send(std::io::Cursor::new(data.clone()))
        .err()
        .map(|e| match e {
            ureq::Error::Status(c, _) => c,
            other => panic!("{other}"),
        });
    assert_eq!(r, Some(413));
    // Exactly at the limit is fine.
    let ok = random_bytes(1 << 20, 4);
    assert_eq!(
        put(&chunk_url(&s, &sha256_hex(&ok)), &ok).unwrap().status,
        201
    );
    let d = data_dir(&dir);
    assert_eq!(files_under(&d.join("chunks")).len(), 1);
    assert!(files_under(&d.join("tmp")).is_empty());
}

#[test]
fn token_is_required_when_set() {
    let dir = TempDir::new("store-401");
    let tok = dir.path().join("token");
    fs::write(&tok, "s3cret-token-of-24-chars\n").unwrap();
    let s = start_store(&dir, &["--token-file", tok.to_str().unwrap()]);
    let data = b"guarded".to_vec();
    let url = chunk_url(&s, &sha256_hex(&data));
    let r = put(&url, &data).unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "Unauthorized");
    let wrong = request(
        "PUT",
        &url,
        &[("Authorization", "Bearer nope")],
        Some(&data),
    )
    .unwrap();
    assert_eq!(wrong.status, 401);
    assert_eq!(get(&url).unwrap().status, 401);
    assert_eq!(get(&format!("{}/chunks", s.url())).unwrap().status, 401);
    assert_nothing_stored(&dir);
    let auth = [("Authorization", "Bearer s3cret-token-of-24-chars")];
    assert_eq!(
        request("PUT", &url, &auth, Some(&data)).unwrap().status,
        201
    );
    assert_eq!(request("GET", &url, &auth, None).unwrap().body, data);
    // Status and metrics stay open for monitoring.
    assert_eq!(get(&format!("{}/status", s.url())).unwrap().status, 200);
    assert_eq!(get(&format!("{}/metrics", s.url())).unwrap().status, 200);
}

/// Issue 18, item 1: a store listening beyond loopback without a token would let anyone on
/// the network list and delete every chunk; it refuses to start, and a weak token too.
#[test]
fn a_store_off_loopback_needs_a_token() {
    let dir = TempDir::new("store-open");
    let data = dir.path().join("data");
    let port = free_port().to_string();
    let listen = format!("0.0.0.0:{port}");
    let run = |extra: &[&str]| {
        let mut args = vec!["--listen", &listen, "--data", data.to_str().unwrap()];
        args.extend_from_slice(extra);
        command("dpyfs-store").args(&args).output().unwrap()
    };
    let open = run(&[]);
    let err = String::from_utf8_lossy(&open.stderr);
    assert_eq!(open.status.code(), Some(2), "{err}");
    assert!(err.contains("not a loopback address"), "{err}");
    assert!(err.contains("--token-file"), "{err}");
    assert!(!data.exists(), "nothing is created before the refusal");

    let weak = dir.path().join("weak.token");
    fs::write(&weak, "secret\n").unwrap();
    let short = run(&["--token-file", weak.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&short.stderr);
    assert_eq!(short.status.code(), Some(1), "{err}");
    assert!(err.contains("at least 16"), "{err}");

    // With a real token it serves (reached here through 127.0.0.1), and only with it.
    let tok = dir.path().join("store.token");
    fs::write(&tok, "0123456789abcdef0123456789abcdef\n").unwrap();
    let s = Daemon::start_at(
        "dpyfs-store",
        &[
            "--listen",
            "0.0.0.0:{port}",
            "--data",
            data.to_str().unwrap(),
            "--token-file",
            tok.to_str().unwrap(),
        ],
        dir.path(),
        port.parse().unwrap(),
    );
    assert_eq!(get(&format!("{}/chunks", s.url())).unwrap().status, 401);
    let auth = [("Authorization", "Bearer 0123456789abcdef0123456789abcdef")];
    let listing = request("GET", &format!("{}/chunks", s.url()), &auth, None).unwrap();
    assert_eq!(listing.status, 200);
}

#[test]
fn disk_reserve_refuses_writes_with_507() {
    let dir = TempDir::new("store-507");
    let s = start_store(&dir, &["--reserve", "100%"]);
    let data = random_bytes(4096, 9);
    let r = put(&chunk_url(&s, &sha256_hex(&data)), &data).unwrap();
    assert_eq!(r.status, 507);
    assert_eq!(r.json()["code"], "InsufficientStorage");
    assert_nothing_stored(&dir);
    let st = get(&format!("{}/status", s.url())).unwrap().json();
    assert!(st["disk"]["reserve_bytes"].as_u64().unwrap() > 0);
}

fn corrupt_file(path: &Path) {
    let mut bytes = fs::read(path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    fs::write(path, bytes).unwrap();
}

#[test]
fn corrupt_chunk_is_quarantined_on_read() {
    let dir = TempDir::new("store-corrupt");
    let s = start_store(&dir, &["--scrub-rate", "0"]);
    let data = random_bytes(300_000, 11);
    let hex = sha256_hex(&data);
    assert_eq!(put(&chunk_url(&s, &hex), &data).unwrap().status, 201);
    let path = data_dir(&dir).join(format!("chunks/{}/{}/{hex}", &hex[0..2], &hex[2..4]));
    corrupt_file(&path);
    let r = get(&chunk_url(&s, &hex)).unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "CorruptChunk");
    assert!(!path.exists(), "corrupt copy still in chunks/");
    let q = files_under(&data_dir(&dir).join("quarantine"));
    assert_eq!(q.len(), 1);
    assert!(
        q[0].file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(&hex)
    );
    assert_eq!(get(&chunk_url(&s, &hex)).unwrap().status, 404);
    // Nor can a range of it be read.
    let r = request("GET", &chunk_url(&s, &hex), &[("Range", "bytes=0-9")], None).unwrap();
    assert_eq!(r.status, 404);
    // A good copy can be uploaded again afterwards.
    assert_eq!(put(&chunk_url(&s, &hex), &data).unwrap().status, 201);
    assert_eq!(get(&chunk_url(&s, &hex)).unwrap().body, data);
}

#[test]
fn scrubber_finds_and_quarantines_damage_on_its_own() {
    let dir = TempDir::new("store-scrub");
    let s = start_store(&dir, &["--scrub-rate", "64", "--scrub-pause", "1"]);
    let mut hexes = Vec::new();
    for i in 0..5 {
        let data = random_bytes(50_000 + i, 100 + i as u64);
        let hex = sha256_hex(&data);
        assert_eq!(put(&chunk_url(&s, &hex), &data).unwrap().status, 201);
        hexes.push(hex);
    }
    let bad = &hexes[2];
    let path = data_dir(&dir).join(format!("chunks/{}/{}/{bad}", &bad[0..2], &bad[2..4]));
    corrupt_file(&path);
    let st = wait_for(30_000, "the scrubber to find the corrupt chunk", || {
        let st = get(&format!("{}/status", s.url())).ok()?.json();
        (st["scrub"]["corrupt_found"] == 1).then_some(st)
    });
    assert_eq!(st["chunks"]["count"], 4);
    assert!(!path.exists());
    let q = files_under(&data_dir(&dir).join("quarantine"));
    assert_eq!(q.len(), 1);
    let metrics = get(&format!("{}/metrics", s.url())).unwrap().text();
    assert!(
        metrics.contains("dpyfs_store_corrupt_chunks_total 1"),
        "{metrics}"
    );
    for h in &hexes {
        if h != bad {
            assert_eq!(get(&chunk_url(&s, h)).unwrap().status, 200);
        }
    }
}

#[test]
fn listing_is_sorted_and_pages_with_after() {
    let dir = TempDir::new("store-list");
    let s = start_store(&dir, &[]);
    let mut hexes: Vec<String> = (0..30)
        .map(|i| {
            let d = random_bytes(10 + i, 500 + i as u64);
            let h = sha256_hex(&d);
            assert_eq!(put(&chunk_url(&s, &h), &d).unwrap().status, 201);
            h
        })
        .collect();
    hexes.sort();
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let r = get(&format!("{}/chunks?after={after}&limit=7", s.url())).unwrap();
        assert_eq!(r.status, 200);
        let page: Vec<String> = r.text().lines().map(str::to_string).collect();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 7);
        after = page.last().unwrap().clone();
        seen.extend(page);
    }
    assert_eq!(seen, hexes);
    // With detail: "hash size mtime" per line.
    let r = get(&format!("{}/chunks?limit=3&detail=1", s.url()))
        .unwrap()
        .text();
    for line in r.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        assert_eq!(f.len(), 3, "{line}");
        let size: usize = f[1].parse().unwrap();
        assert!((10..40).contains(&size));
        assert!(f[2].parse::<u64>().unwrap() > 1_700_000_000);
    }
    let bad = get(&format!("{}/chunks?after=xyz", s.url())).unwrap();
    assert_eq!(bad.status, 400);
    let bad = get(&format!("{}/chunks?limit=-1", s.url())).unwrap();
    assert_eq!(bad.json()["code"], "InvalidLimit");
}

#[test]
fn delete_answers_204_then_404() {
    let dir = TempDir::new("store-del");
    let s = start_store(&dir, &[]);
    let d = b"to be deleted".to_vec();
    let url = chunk_url(&s, &sha256_hex(&d));
    assert_eq!(put(&url, &d).unwrap().status, 201);
    assert_eq!(request("DELETE", &url, &[], None).unwrap().status, 204);
    assert_eq!(request("DELETE", &url, &[], None).unwrap().status, 404);
    assert_eq!(get(&url).unwrap().json()["code"], "NoSuchChunk");
    assert_eq!(request("HEAD", &url, &[], None).unwrap().status, 404);
}

#[test]
fn status_and_metrics_carry_real_figures() {
    let dir = TempDir::new("store-status");
    let s = start_store(&dir, &["--id", "board-1", "--zone", "attic"]);
    let st = get(&format!("{}/status", s.url())).unwrap().json();
    assert_eq!(st["id"], "board-1");
    assert_eq!(st["zone"], "attic");
    assert_eq!(st["version"], env!("CARGO_PKG_VERSION"));
    assert!(st["disk"]["total_bytes"].as_u64().unwrap() > 0);
    assert!(st["disk"]["free_bytes"].as_u64().unwrap() > 0);
    assert_eq!(st["load_average"].as_array().unwrap().len(), 3);
    assert!(st["uptime_seconds"].is_u64());
    assert_eq!(st["scrub"]["enabled"], true);
    let ident: serde_json::Value =
        serde_json::from_slice(&fs::read(data_dir(&dir).join("store.json")).unwrap()).unwrap();
    assert_eq!(ident["format"], 1);
    assert_eq!(ident["id"], "board-1");
    assert_eq!(ident["zone"], "attic");
    let d = random_bytes(1000, 1);
    put(&chunk_url(&s, &sha256_hex(&d)), &d).unwrap();
    get(&chunk_url(&s, &sha256_hex(&d))).unwrap();
    let m = get(&format!("{}/metrics", s.url())).unwrap().text();
    for needle in [
        "dpyfs_store_requests_total{route=\"chunk_put\",status=\"201\"} 1",
        "dpyfs_store_requests_total{route=\"chunk_get\",status=\"200\"} 1",
        "dpyfs_store_bytes_in_total 1000",
        "dpyfs_store_bytes_out_total 1000",
        "dpyfs_store_chunks 1",
        "dpyfs_store_chunk_bytes 1000",
    ] {
        assert!(m.contains(needle), "missing {needle} in\n{m}");
    }
}

#[test]
fn data_dir_of_another_store_is_refused() {
    let dir = TempDir::new("store-ident");
    let mut s = start_store(&dir, &["--id", "alpha"]);
    // A second daemon on the same directory, while the first runs.
    let data = data_dir(&dir);
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let out = command("dpyfs-store")
        .args(["--listen", &listen, "--data", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use by another dpyfs-store"));
    s.kill();
    let out = command("dpyfs-store")
        .args([
            "--listen",
            &listen,
            "--data",
            data.to_str().unwrap(),
            "--id",
            "beta",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("belongs to store 'alpha', not 'beta'"),
        "{err}"
    );
    // Bad flags are usage errors (exit 2) with a pointer to --help.
    let out = command("dpyfs-store")
        .args(["--listen", &listen])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = command("dpyfs-store")
        .args(["--listen", &listen, "--data", "x", "--reserve", "lots"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--reserve"));
}

#[test]
fn tmp_is_emptied_at_start() {
    let dir = TempDir::new("store-tmp");
    let mut s = start_store(&dir, &[]);
    s.kill();
    let stale = data_dir(&dir).join("tmp/half-written-upload");
    fs::write(&stale, b"partial").unwrap();
    s.restart();
    assert!(!stale.exists());
}

#[test]
fn slow_upload_does_not_stall_other_requests() {
    let dir = TempDir::new("store-slow");
    let s = start_store(&dir, &[]);
    let ready = random_bytes(1 << 20, 21);
    let ready_hex = sha256_hex(&ready);
    assert_eq!(put(&chunk_url(&s, &ready_hex), &ready).unwrap().status, 201);
    // Begin an upload that sends its headers and a few bytes, then stalls.
    let slow = random_bytes(1 << 20, 22);
    let mut conn = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let head = format!(
        "PUT /chunks/{} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        sha256_hex(&slow),
        slow.len()
    );
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(&slow[..1000]).unwrap();
    // Meanwhile, on other connections, reads and writes proceed.
    for _ in 0..5 {
        let r = get(&chunk_url(&s, &ready_hex)).unwrap();
        assert_eq!(r.status, 200);
        assert!(r.body == ready);
    }
    // The slow upload then completes normally.
    conn.write_all(&slow[1000..]).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = [0u8; 64];
    let n = conn.read(&mut buf).unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 201"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

#[test]
fn idle_connections_are_dropped() {
    let dir = TempDir::new("store-idle");
    let s = start_store(&dir, &["--idle-timeout", "1"]);
    let mut conn = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut buf = [0u8; 16];
    // The server closes the connection (read returns 0 or an error), rather than the
    // 20 s read timeout of this test expiring.
    let r = conn.read(&mut buf);
    match r {
        Ok(0) => {}
        Err(e) => assert!(
            e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut,
            "server kept the idle connection open: {e}"
        ),
        Ok(n) => panic!("unexpected {n} bytes"),
    }
    // Regression (issue 7 finding): the listener carries the same timeout, and an accept()
    // that timed out after an idle period used to stop the server accepting for good.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(get(&format!("{}/status", s.url())).unwrap().status, 200);
}

/// kill -9 at random moments while uploads run: after each restart every acknowledged
/// chunk reads back, every file under chunks/ hashes to its name, and tmp/ is clean.
#[test]
fn kill_9_during_uploads_loses_nothing_acknowledged() {
    let dir = TempDir::new("store-crash");
    let mut s = start_store(&dir, &["--scrub-rate", "0"]);
    let acked: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let rounds = 8;
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for t in 0..4u64 {
            let url = s.url();
            let acked = Arc::clone(&acked);
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let seed = round * 1_000_000 + t * 10_000 + i;
                    let data = random_bytes(1000 + (seed as usize * 7919) % 700_000, seed);
                    let hex = sha256_hex(&data);
                    let r = put(&format!("{url}/chunks/{hex}"), &data);
                    if r.is_ok_and(|r| r.status == 201 || r.status == 200) {
                        acked.lock().unwrap().push(hex);
                    }
                    i += 1;
                }
            }));
        }
        let delay = 50 + (round * 37) % 250;
        std::thread::sleep(Duration::from_millis(delay));
        s.kill();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        s.restart();
        assert!(
            files_under(&data_dir(&dir).join("tmp")).is_empty(),
            "tmp/ not emptied"
        );
        for f in files_under(&data_dir(&dir).join("chunks")) {
            let bytes = fs::read(&f).unwrap();
            let name = f.file_name().unwrap().to_str().unwrap();
            assert_eq!(sha256_hex(&bytes), name, "torn chunk file {}", f.display());
        }
        for hex in acked.lock().unwrap().iter() {
            let r = get(&chunk_url(&s, hex)).unwrap();
            assert_eq!(
                r.status, 200,
                "acknowledged chunk {hex} lost in round {round}"
            );
        }
    }
    let n = acked.lock().unwrap().len();
    assert!(
        n > rounds as usize,
        "too few uploads were acknowledged ({n}) to mean anything"
    );
    eprintln!("{n} acknowledged uploads survived {rounds} kill -9s");
}

/// Review finding: a request announcing a huge body and sending little must not take the
/// daemon down (tiny_http used to allocate the declared remainder when draining it).
#[test]
fn huge_declared_body_is_refused_and_the_store_lives_on() {
    let dir = TempDir::new("store-huge");
    let s = start_store(&dir, &[]);
    let h = sha256_hex(b"x");
    let req = format!(
        "PUT /chunks/{h} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000000\r\nConnection: close\r\n\r\nhello"
    );
    let answer = raw(s.port, req.as_bytes(), Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(get(&format!("{}/status", s.url())).unwrap().status, 200);
    assert_nothing_stored(&dir);
}

/// A PUT of a chunk whose stored copy has rotted replaces the copy instead of trusting it.
#[test]
fn put_over_a_rotted_copy_heals_it() {
    let dir = TempDir::new("store-heal");
    let s = start_store(&dir, &["--scrub-rate", "0"]);
    let data = random_bytes(200_000, 12);
    let hex = sha256_hex(&data);
    assert_eq!(put(&chunk_url(&s, &hex), &data).unwrap().status, 201);
    let path = data_dir(&dir).join(format!("chunks/{}/{}/{hex}", &hex[0..2], &hex[2..4]));
    corrupt_file(&path);
    // HEAD ?verify=1 notices (and quarantines); a plain HEAD only checks existence.
    let v = request(
        "HEAD",
        &format!("{}?verify=1", chunk_url(&s, &hex)),
        &[],
        None,
    )
    .unwrap();
    assert_eq!(v.status, 404);
    assert!(!path.exists());
    assert_eq!(put(&chunk_url(&s, &hex), &data).unwrap().status, 201);
    // And a rotted copy found by the PUT itself (no HEAD first) is replaced too.
    corrupt_file(&path);
    assert_eq!(put(&chunk_url(&s, &hex), &data).unwrap().status, 201);
    assert!(get(&chunk_url(&s, &hex)).unwrap().body == data);
    assert_eq!(files_under(&data_dir(&dir).join("quarantine")).len(), 2);
}

/// Issue 17: `--version`/`-V` answer without the required flags, and a `--data` that is a
/// file (or under one) is named as "not a directory", with nothing created; both daemons.
#[test]
fn daemons_answer_version_and_refuse_a_file_as_data_folder() {
    let dir = TempDir::new("store-flags");
    let file = dir.path().join("a-file");
    fs::write(&file, b"not a folder").unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    for name in ["dpyfs-store", "dpyfs-director"] {
        for flag in ["--version", "-V"] {
            let out = command(name).arg(flag).output().unwrap();
            assert!(out.status.success(), "{name} {flag}: {out:?}");
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                format!("{name} {}\n", env!("CARGO_PKG_VERSION"))
            );
        }
        for data in [file.clone(), file.join("sub")] {
            let out = command(name)
                .args(["--listen", &listen, "--data", data.to_str().unwrap()])
                .args(if name == "dpyfs-director" {
                    &["--store", "http://127.0.0.1:1"][..]
                } else {
                    &[][..]
                })
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{name}: {err}");
            assert!(
                err.contains(&format!("{} is not a directory", file.display())),
                "{name} --data {}: {err}",
                data.display()
            );
        }
        assert_eq!(fs::read(&file).unwrap(), b"not a folder");
    }
}

/// The harness's leak check (issue 17): a daemon a test started and left running fails
/// that test when its temporary folder is dropped, and is stopped by its PID.
#[test]
fn harness_fails_a_test_that_leaves_a_daemon_running() {
    let dir = TempDir::new("store-leak");
    let path = dir.path().to_path_buf();
    let port = free_port();
    let data = path.join("data");
    let mut child = command("dpyfs-store")
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--data", data.to_str().unwrap(), "--reserve", "0"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(START_TIMEOUT_MS, "the store to answer", || {
        get(&format!("http://127.0.0.1:{port}/status")).ok()
    });
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(dir)));
    let msg = dropped.expect_err("dropping the folder of a running daemon must fail");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("still running"), "{msg}");
    assert!(msg.contains(&child.id().to_string()), "{msg}");
    // Killed by the check: it exits by a signal, not by itself.
    let status = child.wait().unwrap();
    assert!(status.code().is_none(), "{status}");
    let _ = fs::remove_dir_all(&path);
}
