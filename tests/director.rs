//! The director with three real stores on loopback (issue 3).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn obj_url(c: &Cluster, bucket: &str, key: &str) -> String {
    format!("{}/{bucket}/{key}", c.url())
}

fn mkbucket(c: &Cluster, b: &str) {
    let r = request("PUT", &format!("{}/{b}", c.url()), &[], None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

fn md5_hex(data: &[u8]) -> String {
    use md5::{Digest, Md5};
    dpyfs::hash::to_hex(&Md5::digest(data))
}

fn locate(c: &Cluster, bucket: &str, key: &str) -> Value {
    let r = get(&format!("{}/_dpyfs/object/{bucket}/{key}", c.url())).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn code_of(a: &Answer) -> String {
    xml_values(&a.text(), "Code")
        .first()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn round_trips_overwrite_and_delete() {
    let dir = TempDir::new("dir-rt");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "photos");
    for (i, len) in [0usize, 1, 1 << 20, 5 << 20, 100 << 20]
        .into_iter()
        .enumerate()
    {
        let data = random_bytes(len, 40 + i as u64);
        let key = format!("dir/size-{len}.bin");
        let r = put(&obj_url(&c, "photos", &key), &data).unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        let etag = format!("\"{}\"", md5_hex(&data));
        assert_eq!(r.header("etag"), Some(etag.as_str()));
        let g = get(&obj_url(&c, "photos", &key)).unwrap();
        assert_eq!(g.status, 200);
        assert_eq!(g.body.len(), len);
        assert_eq!(sha256_hex(&g.body), sha256_hex(&data), "{len} bytes differ");
        assert_eq!(g.header("etag"), Some(etag.as_str()));
        let h = request("HEAD", &obj_url(&c, "photos", &key), &[], None).unwrap();
        assert_eq!(h.header("content-length"), Some(len.to_string().as_str()));
        assert!(h.body.is_empty());
    }
    // Overwrite: the new bytes win.
    let url = obj_url(&c, "photos", "dir/size-1.bin");
    assert_eq!(put(&url, b"second version").unwrap().status, 200);
    assert_eq!(get(&url).unwrap().body, b"second version");
    // Delete, twice (idempotent), then 404 NoSuchKey.
    assert_eq!(request("DELETE", &url, &[], None).unwrap().status, 204);
    assert_eq!(request("DELETE", &url, &[], None).unwrap().status, 204);
    let g = get(&url).unwrap();
    assert_eq!(g.status, 404);
    assert_eq!(code_of(&g), "NoSuchKey");
    // Metadata and content type round trip.
    let url = obj_url(&c, "photos", "meta.txt");
    let r = request(
        "PUT",
        &url,
        &[
            ("Content-Type", "text/plain"),
            ("x-amz-meta-camera", "pinhole"),
        ],
        Some(b"hi"),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    let g = get(&url).unwrap();
    assert_eq!(g.header("content-type"), Some("text/plain"));
    assert_eq!(g.header("x-amz-meta-camera"), Some("pinhole"));
    assert!(g.header("last-modified").unwrap().ends_with(" GMT"));
}

#[test]
fn curl_uploads_plain_and_chunked_bodies() {
    let dir = TempDir::new("dir-curl");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "bkt");
    let data = random_bytes(3 << 20, 5);
    let f = dir.path().join("upload.bin");
    fs::write(&f, &data).unwrap();
    let curl = |args: &[&str]| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--fail-with-body"])
            .args(args)
            .output()
            .expect("curl is needed for this test: apt-get install curl");
        assert!(
            out.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    curl(&["-T", f.to_str().unwrap(), &obj_url(&c, "bkt", "plain")]);
    // `curl -T -` sends Transfer-Encoding: chunked.
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "curl -sS --fail-with-body -T - '{}' < '{}'",
            obj_url(&c, "bkt", "chunked"),
            f.display()
        ))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for key in ["plain", "chunked"] {
        let got = curl(&[&obj_url(&c, "bkt", key)]);
        assert!(got == data, "{key} differs");
    }
}

#[test]
fn listing_with_prefix_delimiter_and_pages() {
    let dir = TempDir::new("dir-list");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "lst");
    // UTF-8 byte order: "f" (0x66) sorts before "é" (0xC3 0xA9).
    let keys = ["a/1", "a/2", "a/b/3", "b", "c d/f", "c d/é", "z"];
    for k in keys {
        let url = format!("{}/lst/{}", c.url(), dpyfs::http::percent_encode(k, true));
        assert_eq!(put(&url, k.as_bytes()).unwrap().status, 200);
    }
    let list = |q: &str| {
        get(&format!("{}/lst?list-type=2{q}", c.url()))
            .unwrap()
            .text()
    };
    assert_eq!(xml_values(&list(""), "Key"), keys);
    let d = list("&delimiter=/");
    assert_eq!(xml_values(&d, "Key"), ["b", "z"]);
    assert_eq!(xml_values(&d, "Prefix")[1..], ["a/", "c d/"]);
    let d = list("&prefix=a/&delimiter=/");
    assert_eq!(xml_values(&d, "Key"), ["a/1", "a/2"]);
    assert_eq!(xml_values(&d, "Prefix")[1..], ["a/b/"]);
    let d = list("&encoding-type=url&prefix=c%20d/");
    assert_eq!(xml_values(&d, "Key"), ["c%20d/f", "c%20d/%C3%A9"]);
    // Pages of two, with the delimiter, until the end.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..10 {
        let q = match &token {
            Some(t) => format!("&max-keys=2&delimiter=/&continuation-token={t}"),
            None => "&max-keys=2&delimiter=/".into(),
        };
        let d = list(&q);
        seen.extend(xml_values(&d, "Key"));
        seen.extend(xml_values(&d, "Prefix").into_iter().skip(1));
        if xml_values(&d, "IsTruncated") == ["false"] {
            token = None;
            break;
        }
        token = xml_values(&d, "NextContinuationToken").pop();
    }
    assert!(token.is_none(), "listing never ended");
    let seen: BTreeSet<String> = seen.into_iter().collect();
    let want: BTreeSet<String> = ["a/", "b", "c d/", "z"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(seen, want);
    // ListObjects v1 with a marker.
    let v1 = get(&format!("{}/lst?marker=b", c.url())).unwrap().text();
    assert_eq!(xml_values(&v1, "Key"), ["c d/f", "c d/é", "z"]);
    // List buckets.
    let all = get(&format!("{}/", c.url())).unwrap().text();
    assert_eq!(xml_values(&all, "Name"), ["lst"]);
}

#[test]
fn ranges_at_chunk_boundaries() {
    let dir = TempDir::new("dir-range");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "rng");
    let data = random_bytes(6 << 20, 77);
    let url = obj_url(&c, "rng", "big");
    assert_eq!(put(&url, &data).unwrap().status, 200);
    let loc = locate(&c, "rng", "big");
    let mut bounds = vec![0u64];
    for ch in loc["chunks"].as_array().unwrap() {
        bounds.push(bounds.last().unwrap() + ch["len"].as_u64().unwrap());
    }
    assert!(bounds.len() > 3, "expected several chunks, got {bounds:?}");
    let size = data.len() as u64;
    let mut cases: Vec<(u64, u64)> = vec![(0, 0), (0, size - 1), (size - 1, size - 1)];
    for &b in &bounds[1..bounds.len() - 1] {
        cases.extend([(b - 1, b - 1), (b, b), (b - 1, b), (b - 10, b + 10)]);
    }
    for (a, b) in cases {
        let r = request("GET", &url, &[("Range", &format!("bytes={a}-{b}"))], None).unwrap();
        assert_eq!(r.status, 206, "bytes={a}-{b}");
        assert!(
            r.body == data[a as usize..=b as usize],
            "bytes={a}-{b} differ"
        );
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes {a}-{b}/{size}").as_str())
        );
    }
    let r = request("GET", &url, &[("Range", "bytes=-100")], None).unwrap();
    assert!(r.body == data[data.len() - 100..]);
    let r = request(
        "GET",
        &url,
        &[("Range", &format!("bytes={}-", bounds[1]))],
        None,
    )
    .unwrap();
    assert!(r.body == data[bounds[1] as usize..]);
    let r = request("GET", &url, &[("Range", &format!("bytes={size}-"))], None).unwrap();
    assert_eq!(r.status, 416);
    assert_eq!(code_of(&r), "InvalidRange");
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes */{size}").as_str())
    );
}

/// Which store ids hold chunk `hash` (by HEAD on every store).
fn holders(c: &Cluster, ids: &BTreeMap<String, String>, hash: &str) -> BTreeSet<String> {
    ids.iter()
        .filter(|(_, url)| {
            request("HEAD", &format!("{url}/chunks/{hash}"), &[], None)
                .unwrap()
                .status
                == 200
        })
        .map(|(id, _)| id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|_| !c.stores.is_empty())
        .collect()
}

fn store_ids(c: &Cluster) -> BTreeMap<String, String> {
    c.stores
        .iter()
        .map(|s| {
            let st = get(&format!("{}/status", s.url())).unwrap().json();
            (st["id"].as_str().unwrap().to_string(), s.url())
        })
        .collect()
}

#[test]
fn every_chunk_is_on_exactly_the_stores_placement_names() {
    let dir = TempDir::new("dir-place");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "plc");
    let ids = store_ids(&c);
    for i in 0..6u64 {
        let data = random_bytes(300_000 * (i as usize + 1), 900 + i);
        let key = format!("obj{i}");
        assert_eq!(put(&obj_url(&c, "plc", &key), &data).unwrap().status, 200);
        let loc = locate(&c, "plc", &key);
        let mut all: Vec<&Value> = loc["chunks"].as_array().unwrap().iter().collect();
        all.push(&loc["manifest"]);
        for ch in all {
            let want: BTreeSet<String> = ch["placement"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect();
            assert_eq!(want.len(), 2);
            let got = holders(&c, &ids, ch["hash"].as_str().unwrap());
            assert_eq!(got, want, "chunk {}", ch["hash"]);
        }
    }
}

#[test]
fn reads_survive_one_store_down_and_writes_need_n_live_stores() {
    let dir = TempDir::new("dir-down");
    let mut c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "dwn");
    let mut objects = Vec::new();
    for i in 0..12u64 {
        let data = random_bytes(20_000 + 100_000 * (i as usize % 4), 300 + i);
        let key = format!("k{i}");
        assert_eq!(put(&obj_url(&c, "dwn", &key), &data).unwrap().status, 200);
        let loc = locate(&c, "dwn", &key);
        objects.push((key, data, loc));
    }
    let ids = store_ids(&c);
    // One store stopped: every object still reads.
    c.stores[0].kill();
    for (key, data, _) in &objects {
        let g = get(&obj_url(&c, "dwn", key)).unwrap();
        assert_eq!(g.status, 200, "{key} after one store died");
        assert!(g.body == *data);
    }
    // Two of three stopped with N=2: writes are refused and nothing is journaled.
    c.stores[1].kill();
    c.wait_stores_up(1);
    let seq_before = c.status()["journal"]["last_seq"].clone();
    let r = put(&obj_url(&c, "dwn", "new"), b"no room for two copies").unwrap();
    assert_eq!(r.status, 503);
    assert_eq!(code_of(&r), "InsufficientStores");
    assert_eq!(c.status()["journal"]["last_seq"], seq_before);
    assert_eq!(get(&obj_url(&c, "dwn", "new")).unwrap().status, 404);
    // Objects whose every chunk has a copy on the live store still read.
    let live_url = c.stores[2].url();
    let live_id = ids.iter().find(|(_, u)| **u == live_url).unwrap().0.clone();
    let mut readable = 0;
    for (key, data, loc) in &objects {
        let on_live = loc["chunks"].as_array().unwrap().iter().all(|ch| {
            ch["placement"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v == live_id.as_str())
        });
        let g = get(&obj_url(&c, "dwn", key)).unwrap();
        if on_live {
            assert_eq!(g.status, 200, "{key} has a copy on the live store");
            assert!(g.body == *data);
            readable += 1;
        } else {
            assert_eq!(g.status, 503, "{key}: {}", g.text());
            assert_eq!(code_of(&g), "ChunkUnavailable");
        }
    }
    assert!(
        readable > 0,
        "no object had all its chunks on the live store; test proves nothing"
    );
}

#[test]
fn bad_requests_get_s3_errors_and_change_nothing() {
    let dir = TempDir::new("dir-bad");
    let c = Cluster::start(&dir, 3, 2, &[]);
    let u = c.url();
    let r = request("PUT", &format!("{u}/Bad_Name"), &[], None).unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (400, "InvalidBucketName"));
    let r = put(&format!("{u}/nobucket/k"), b"x").unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (404, "NoSuchBucket"));
    mkbucket(&c, "bkt");
    assert_eq!(put(&format!("{u}/bkt/k"), b"x").unwrap().status, 200);
    // Re-creating one's own bucket is 200 in us-east-1 (S3's legacy rule there) and
    // changes nothing: the object stays, nothing is journaled.
    let seq = c.status()["journal"]["last_seq"].clone();
    let r = request("PUT", &format!("{u}/bkt"), &[], None).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(c.status()["journal"]["last_seq"], seq);
    assert_eq!(get(&format!("{u}/bkt/k")).unwrap().body, b"x");
    let r = request("DELETE", &format!("{u}/bkt"), &[], None).unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (409, "BucketNotEmpty"));
    let long = "k".repeat(1025);
    let r = put(&format!("{u}/bkt/{long}"), b"x").unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (400, "InvalidArgument"));
    let r = get(&format!("{u}/bkt/missing")).unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (404, "NoSuchKey"));
    assert!(r.header("content-type").unwrap().contains("xml"));
    let seq = c.status()["journal"]["last_seq"].clone();
    // A body cut short: Content-Length promises more than arrives, then the client leaves.
    let head =
        "PUT /bkt/cut HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n"
            .to_string();
    let mut req = head.into_bytes();
    req.extend(random_bytes(300_000, 8));
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", c.director.port)).unwrap();
        s.write_all(&req).unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut out);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(&format!("{u}/bkt/cut")).unwrap().status, 404);
    assert_eq!(c.status()["journal"]["last_seq"], seq);
    // Deleting the object empties the bucket, which can then go.
    assert_eq!(
        request("DELETE", &format!("{u}/bkt/k"), &[], None)
            .unwrap()
            .status,
        204
    );
    assert_eq!(
        request("DELETE", &format!("{u}/bkt"), &[], None)
            .unwrap()
            .status,
        204
    );
    let r = request("HEAD", &format!("{u}/bkt"), &[], None).unwrap();
    assert_eq!(r.status, 404);
}

#[test]
fn edited_file_shares_most_chunks_with_the_original() {
    let dir = TempDir::new("dir-dedup");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "ddp");
    let original = random_bytes(64 << 20, 2024);
    assert_eq!(
        put(&obj_url(&c, "ddp", "v1"), &original).unwrap().status,
        200
    );
    let mut edited = random_bytes(100, 1);
    edited.extend_from_slice(&original[..32 << 20]);
    edited.extend(random_bytes(100, 2));
    edited.extend_from_slice(&original[32 << 20..]);
    let before = c.status()["chunks"].clone();
    assert_eq!(put(&obj_url(&c, "ddp", "v2"), &edited).unwrap().status, 200);
    let after = c.status()["chunks"].clone();
    let n = |v: &Value, k: &str| v[k].as_u64().unwrap();
    let dedup = n(&after, "deduplicated") - n(&before, "deduplicated");
    let written = n(&after, "written") - n(&before, "written");
    // The second upload's data chunks, without its manifest (always new).
    let chunks = locate(&c, "ddp", "v2")["chunks"].as_array().unwrap().len() as u64;
    assert_eq!(dedup + written, chunks + 1);
    let ratio = dedup as f64 / chunks as f64;
    eprintln!("{dedup} of {chunks} chunks of the edited file were already stored ({ratio:.2})");
    assert!(ratio >= 0.9, "only {dedup} of {chunks} chunks deduplicated");
    assert_eq!(
        sha256_hex(&get(&obj_url(&c, "ddp", "v2")).unwrap().body),
        sha256_hex(&edited)
    );
}

#[test]
fn fixed_size_chunking_is_a_flag() {
    let dir = TempDir::new("dir-fixed");
    let c = Cluster::start(&dir, 3, 2, &["--chunking", "fixed", "--chunk-size", "256K"]);
    mkbucket(&c, "fix");
    let data = random_bytes(1_000_000, 3);
    assert_eq!(put(&obj_url(&c, "fix", "x"), &data).unwrap().status, 200);
    let lens: Vec<u64> = locate(&c, "fix", "x")["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["len"].as_u64().unwrap())
        .collect();
    assert_eq!(lens, [262_144, 262_144, 262_144, 213_568]);
    assert!(get(&obj_url(&c, "fix", "x")).unwrap().body == data);
}

/// kill -9 of the director at random moments during concurrent uploads: every upload
/// that got a 200 reads back byte-identical after the restart, and nothing that did not
/// get a 200 is visible in part.
#[test]
fn kill_9_of_the_director_loses_no_acknowledged_upload() {
    let dir = TempDir::new("dir-crash");
    let mut c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "crash");
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let attempted: Arc<Mutex<BTreeMap<String, String>>> = Arc::new(Mutex::new(BTreeMap::new()));
    let rounds = 6u64;
    for round in 0..rounds {
        let stop = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let url = c.url();
                let (acked, attempted, stop) = (acked.clone(), attempted.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let seed = round * 1_000_000 + t * 10_000 + i;
                        let data = random_bytes(10_000 + (seed as usize * 7919) % 2_500_000, seed);
                        let key = format!("r{round}/t{t}/{i}");
                        let sum = sha256_hex(&data);
                        attempted.lock().unwrap().insert(key.clone(), sum.clone());
                        if put(&format!("{url}/crash/{key}"), &data).is_ok_and(|r| r.status == 200)
                        {
                            acked.lock().unwrap().push((key, sum));
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(150 + (round * 131) % 400));
        c.director.kill();
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        c.director.restart();
        c.wait_stores_up(3);
        for (key, sum) in acked.lock().unwrap().iter() {
            let g = get(&format!("{}/crash/{key}", c.url())).unwrap();
            assert_eq!(
                g.status, 200,
                "acknowledged {key} lost after kill -9 in round {round}"
            );
            assert_eq!(&sha256_hex(&g.body), sum, "{key} differs");
        }
        let listing = get(&format!("{}/crash?list-type=2&max-keys=1000", c.url()))
            .unwrap()
            .text();
        let attempted = attempted.lock().unwrap();
        for key in xml_values(&listing, "Key") {
            let want = attempted.get(&key).expect("a key nobody uploaded");
            let g = get(&format!("{}/crash/{key}", c.url())).unwrap();
            assert_eq!(&sha256_hex(&g.body), want, "{key} visible but not whole");
        }
    }
    let n = acked.lock().unwrap().len();
    eprintln!("{n} acknowledged uploads survived {rounds} kill -9s of the director");
    assert!(
        n >= rounds as usize,
        "too few acknowledged uploads ({n}) to mean anything"
    );
}

fn journal_files(c: &Cluster, dir: &TempDir) -> Vec<std::path::PathBuf> {
    let _ = c;
    let mut v: Vec<_> = fs::read_dir(dir.path().join("director/journal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn torn_last_line_is_cut_and_corrupt_middle_line_refuses_start() {
    let dir = TempDir::new("dir-journal");
    let mut c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "jnl");
    for i in 0..5 {
        assert_eq!(
            put(&obj_url(&c, "jnl", &format!("k{i}")), b"v")
                .unwrap()
                .status,
            200
        );
    }
    c.director.kill();
    let seg = journal_files(&c, &dir).pop().unwrap();
    // A crash mid-write: half a record at the end, no newline.
    let mut text = fs::read(&seg).unwrap();
    let good_len = text.len();
    text.extend_from_slice(b"0badc0de {\"bucket\":\"j\",\"key\":\"half");
    fs::write(&seg, &text).unwrap();
    c.director.restart();
    assert!(
        c.director.log_text().contains("torn"),
        "{}",
        c.director.log_text()
    );
    assert_eq!(fs::read(&seg).unwrap().len(), good_len, "torn tail not cut");
    for i in 0..5 {
        assert_eq!(
            get(&obj_url(&c, "jnl", &format!("k{i}"))).unwrap().status,
            200
        );
    }
    assert_eq!(put(&obj_url(&c, "jnl", "after"), b"w").unwrap().status, 200);
    c.director.kill();
    // Damage in the middle: start-up refuses, naming the file and line.
    let text = fs::read_to_string(&seg).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let at = lines.iter().position(|l| l.contains("\"k1\"")).unwrap();
    assert!(
        at + 1 < lines.len(),
        "the damaged line must not be the last"
    );
    lines[at] = lines[at].replacen("\"k1\"", "\"kX\"", 1);
    fs::write(&seg, lines.join("\n") + "\n").unwrap();
    let status = c.director.run_expecting_exit();
    assert!(!status.success());
    let log = c.director.log_text();
    let name = seg.file_name().unwrap().to_str().unwrap();
    assert!(
        log.contains(&format!("{name}:{}", at + 1)),
        "no file:line in\n{log}"
    );
    assert!(log.to_lowercase().contains("hint"), "no hint in\n{log}");
}

#[test]
fn compaction_keeps_every_object() {
    let dir = TempDir::new("dir-compact");
    let mut c = Cluster::start(&dir, 3, 2, &["--compact-bytes", "4K"]);
    mkbucket(&c, "cmp");
    for i in 0..40 {
        assert_eq!(
            put(
                &obj_url(&c, "cmp", &format!("k{i:02}")),
                format!("v{i}").as_bytes()
            )
            .unwrap()
            .status,
            200
        );
    }
    assert_eq!(
        request("DELETE", &obj_url(&c, "cmp", "k07"), &[], None)
            .unwrap()
            .status,
        204
    );
    let snaps: Vec<_> = fs::read_dir(dir.path().join("director"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("snapshot-"))
        .collect();
    assert_eq!(snaps.len(), 1, "one snapshot expected");
    let r = request("POST", &format!("{}/_dpyfs/compact", c.url()), &[], None).unwrap();
    assert_eq!(r.status, 200);
    c.director.kill();
    c.director.restart();
    let keys = xml_values(
        &get(&format!("{}/cmp?list-type=2", c.url())).unwrap().text(),
        "Key",
    );
    assert_eq!(keys.len(), 39);
    assert!(!keys.contains(&"k07".to_string()));
    assert_eq!(get(&obj_url(&c, "cmp", "k39")).unwrap().body, b"v39");
}

/// A 2 GiB upload streams through the director: its peak RSS grows by at most about
/// chunks in flight x largest chunk x replicas (issue 3), and the object reads back whole.
#[test]
fn two_gib_upload_streams_with_bounded_director_memory() {
    const LEN: u64 = 2 << 30;
    let dir = TempDir::new("dir-2gib");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "big");
    // Warm up (threads, connection pools, allocator) with a small object first.
    assert_eq!(
        put(&obj_url(&c, "big", "warm"), &random_bytes(9 << 20, 1))
            .unwrap()
            .status,
        200
    );
    let pid = c.director.pid().unwrap();
    let before = peak_rss_bytes(pid).expect("/proc/<pid>/status is needed (Linux)");
    let r = ureq::put(&obj_url(&c, "big", "two-gib"))
        .send(GenReader::new(LEN, 42))
        .unwrap();
    assert_eq!(r.status(), 200);
    let after = peak_rss_bytes(pid).unwrap();
    let bound: u64 = 4 * (4 << 20) * 2; // CHUNKS_IN_FLIGHT x CDC_MAX_BYTES x replicas
    let grew = after.saturating_sub(before);
    eprintln!(
        "director peak RSS {} MiB before, {} MiB after the 2 GiB upload: +{} MiB (bound {} MiB)",
        before >> 20,
        after >> 20,
        grew >> 20,
        bound >> 20
    );
    assert!(
        grew <= bound,
        "peak RSS grew by {grew} bytes, more than {bound}"
    );
    let (_, want) = sha256_of_reader(&mut GenReader::new(LEN, 42));
    let mut body = ureq::get(&obj_url(&c, "big", "two-gib"))
        .call()
        .unwrap()
        .into_reader();
    let (n, got) = sha256_of_reader(&mut body);
    assert_eq!(n, LEN);
    assert_eq!(got, want);
}

/// Review findings: requests the director must refuse rather than misread, and bodies cut
/// short, change nothing; a huge declared body does not take the director down.
#[test]
fn unsupported_s3_operations_and_cut_bodies_change_nothing() {
    let dir = TempDir::new("dir-refuse");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "keep");
    let url = obj_url(&c, "keep", "obj");
    assert_eq!(put(&url, b"original").unwrap().status, 200);
    for (method, q, headers, body) in [
        ("PUT", "?tagging", vec![], Some(&b"<Tagging/>"[..])),
        ("PUT", "?retention", vec![], Some(&b"<Retention/>"[..])),
        ("POST", "?restore", vec![], Some(&b"<RestoreRequest/>"[..])),
        ("PUT", "?unknown-thing", vec![], Some(&b"x"[..])),
        ("GET", "?torrent", vec![], None),
        (
            "PUT",
            "",
            vec![("If-None-Match", "\"abc\"")],
            Some(&b"x"[..]),
        ),
    ] {
        let r = request(method, &format!("{url}{q}"), &headers, body).unwrap();
        assert_eq!(r.status, 501, "{method} {q} {headers:?}: {}", r.text());
        assert_eq!(code_of(&r), "NotImplemented");
        assert_eq!(
            get(&url).unwrap().body,
            b"original",
            "{method} {q} changed the object"
        );
    }
    let r = request(
        "PUT",
        &format!("{}/keep?cors", c.url()),
        &[],
        Some(b"<CORSConfiguration/>"),
    )
    .unwrap();
    assert_eq!(r.status, 501);
    // An unsupported request is the client's business: logged at INFO, so it does not
    // fill the status page's recent errors.
    let errors = c.status()["recent_errors"].clone();
    assert!(errors.is_array(), "{errors}");
    let errors = errors.to_string();
    assert!(!errors.contains("not implemented"), "{errors}");
    assert!(
        c.director
            .log_text()
            .contains("INFO  dpyfs::director::s3::api] /keep: not implemented"),
        "{}",
        c.director.log_text()
    );
    // A part for an upload that does not exist is refused and does not touch the object.
    let r = request(
        "PUT",
        &format!("{url}?partNumber=1&uploadId=x"),
        &[],
        Some(b"part"),
    )
    .unwrap();
    assert_eq!((r.status, code_of(&r).as_str()), (404, "NoSuchUpload"));
    assert_eq!(get(&url).unwrap().body, b"original");
    // An aws-chunked body cut short (decoded since issue 4) is refused and stores nothing.
    let r = request(
        "PUT",
        &url,
        &[("Content-Encoding", "aws-chunked")],
        Some(b"5\r\nhello"),
    )
    .unwrap();
    assert_eq!(
        (r.status, code_of(&r).as_str()),
        (400, "IncompleteBody"),
        "{}",
        r.text()
    );
    assert_eq!(get(&url).unwrap().body, b"original");
    // A chunked body cut in the middle of a chunk is not stored.
    {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(("127.0.0.1", c.director.port)).unwrap();
        s.write_all(b"PUT /keep/obj HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n0123456789").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut out);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(&url).unwrap().body, b"original");
    // A huge declared body with a tiny real one: refused, and the director lives on.
    let req = "PUT /nobucket/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000000000\r\nConnection: close\r\n\r\nhello";
    let answer = raw(c.director.port, req.as_bytes(), Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(get(&url).unwrap().body, b"original");
    // The bucket name `metrics` is reserved for the Prometheus endpoint.
    let r = request("PUT", &format!("{}/metrics", c.url()), &[], None).unwrap();
    assert_eq!(r.status, 400);
}

/// Regression (found by the benchmark): many concurrent uploads of identical small objects
/// made a store answer "already present" before reading the request body, and the next
/// request on that kept-alive connection stalled until the director's 30 s timeout, so
/// stores were marked down and uploads failed with 503.
#[test]
fn concurrent_identical_small_uploads_all_succeed() {
    let dir = TempDir::new("dir-same");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "same");
    let data = random_bytes(4096, 5);
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let (url, data, failures) = (c.url(), data.clone(), failures.clone());
            std::thread::spawn(move || {
                for i in 0..25 {
                    let r = put(&format!("{url}/same/t{t}-{i}"), &data);
                    match r {
                        Ok(a) if a.status == 200 => {}
                        Ok(a) => {
                            failures
                                .lock()
                                .unwrap()
                                .push(format!("{} {}", a.status, a.text()))
                        }
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let f = failures.lock().unwrap();
    assert!(
        f.is_empty(),
        "{} of 400 uploads failed, e.g. {:?}",
        f.len(),
        f.first()
    );
    assert!(
        c.director.log_text().matches("timed out").count() == 0,
        "a store stalled"
    );
}

/// A store whose disk is full (507) is passed over: every upload still gets N copies on
/// the other stores, and nothing lands on the full one.
#[test]
fn a_full_store_is_skipped_and_writes_keep_n_copies() {
    let dir = TempDir::new("dir-full");
    let mut c = Cluster::start(&dir, 3, 2, &[]);
    let full = Cluster::store(&dir, 4, &["--scrub-rate", "0", "--reserve", "100%"]);
    let body = format!("{{\"url\":\"{}\"}}", full.url());
    let r = request(
        "POST",
        &format!("{}/_dpyfs/stores", c.url()),
        &[],
        Some(body.as_bytes()),
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    c.stores.push(full);
    c.wait_stores_up(4);
    mkbucket(&c, "full");
    for i in 0..12u64 {
        let data = random_bytes(200_000 + i as usize * 10_000, 700 + i);
        let url = obj_url(&c, "full", &format!("k{i}"));
        let r = put(&url, &data).unwrap();
        assert_eq!(r.status, 200, "k{i}: {}", r.text());
        assert!(get(&url).unwrap().body == data);
        let loc = locate(&c, "full", &format!("k{i}"));
        let mut all: Vec<&Value> = loc["chunks"].as_array().unwrap().iter().collect();
        all.push(&loc["manifest"]);
        for ch in all {
            let h = ch["hash"].as_str().unwrap();
            let copies = c
                .stores
                .iter()
                .filter(|s| {
                    request("HEAD", &format!("{}/chunks/{h}", s.url()), &[], None)
                        .unwrap()
                        .status
                        == 200
                })
                .count();
            assert_eq!(copies, 2, "chunk {h} of k{i}");
        }
    }
    let st = get(&format!("{}/status", c.stores[3].url()))
        .unwrap()
        .json();
    assert_eq!(st["chunks"]["count"], 0, "the full store took chunks");
}

/// Stores send chunks to the director without hashing them first (`GET ?verify=0`): the
/// director verifies every byte, reads a bad copy's chunk from another store, and has the
/// store that sent it check and quarantine it.
#[test]
fn a_bad_copy_is_skipped_on_read_and_quarantined_by_its_store() {
    let dir = TempDir::new("dir-badcopy");
    let c = Cluster::start(&dir, 3, 2, &[]);
    mkbucket(&c, "bad");
    let data = random_bytes(300_000, 9);
    assert_eq!(put(&obj_url(&c, "bad", "k"), &data).unwrap().status, 200);
    let loc = locate(&c, "bad", "k");
    let hash = loc["chunks"][0]["hash"].as_str().unwrap().to_string();
    let first = loc["chunks"][0]["placement"][0]
        .as_str()
        .unwrap()
        .to_string();
    let store_dir = dir.path().join(first.replace('s', "store"));
    let file = files_under(&store_dir.join("chunks"))
        .into_iter()
        .find(|p| p.file_name().and_then(|n| n.to_str()) == Some(hash.as_str()))
        .expect("the first placement store holds the chunk");
    let mut bytes = fs::read(&file).unwrap();
    bytes[100] ^= 0xff;
    fs::write(&file, &bytes).unwrap();

    let g = get(&obj_url(&c, "bad", "k")).unwrap();
    assert_eq!(g.status, 200);
    assert!(g.body == data, "the object came back wrong");
    assert_eq!(c.status()["chunks"]["bad_copies_seen"], 1);
    let q = files_under(&store_dir.join("quarantine"));
    assert_eq!(q.len(), 1, "the bad copy was not quarantined");
    assert!(!file.exists());
    // A store's own GET (no ?verify=0) still refuses to send a bad copy.
    let store = c
        .stores
        .iter()
        .find(|s| s.args.iter().any(|a| a == &first))
        .unwrap();
    fs::write(&file, &bytes).unwrap();
    let r = get(&format!("{}/chunks/{hash}", store.url())).unwrap();
    assert_eq!(r.status, 404);
}
