//! Chain (pipeline) replication (issue 19): a store forwards a chunk to the next stores of
//! its chain while writing its own copy, and the director sends each chunk once. Real
//! stores and directors on 127.0.0.1.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::fs;

const TOKEN: &str = "chain-token-of-twenty-eight";

/// Store `i` of a chain test, with the shared token.
fn store(dir: &TempDir, i: usize) -> Daemon {
    let tok = dir.path().join("token");
    fs::write(&tok, format!("{TOKEN}\n")).unwrap();
    Cluster::store(dir, i, &["--token-file", tok.to_str().unwrap()])
}

fn auth() -> [(&'static str, &'static str); 1] {
    [("Authorization", "Bearer chain-token-of-twenty-eight")]
}

fn put_chain(first: &Daemon, rest: &[String], data: &[u8], hex: &str) -> Answer {
    let url = format!("{}/chunks/{hex}", first.url());
    let chain = rest.join(" ");
    let mut h = auth().to_vec();
    h.push(("X-Dpyfs-Forward", chain.as_str()));
    request("PUT", &url, &h, Some(data)).unwrap()
}

fn holds(s: &Daemon, hex: &str) -> Option<Vec<u8>> {
    let r = request("GET", &format!("{}/chunks/{hex}", s.url()), &auth(), None).unwrap();
    (r.status == 200).then_some(r.body)
}

#[test]
fn a_chunk_sent_once_lands_on_every_store_of_the_chain() {
    let dir = TempDir::new("chain-ok");
    let s: Vec<Daemon> = (1..=3).map(|i| store(&dir, i)).collect();
    let data = random_bytes(3 << 20, 1);
    let hex = sha256_hex(&data);
    let rest = vec![s[1].url(), s[2].url()];
    let r = put_chain(&s[0], &rest, &data, &hex);
    assert_eq!(r.status, 201, "{}", r.text());
    let f = r.json()["forwarded"].clone();
    assert_eq!(f[0]["url"], s[1].url());
    assert_eq!(f[0]["created"], true, "{f}");
    assert_eq!(f[1]["url"], s[2].url());
    assert_eq!(f[1]["created"], true, "{f}");
    for st in &s {
        assert_eq!(holds(st, &hex).as_deref(), Some(&data[..]));
    }
    let st = get(&format!("{}/status", s[0].url())).unwrap().json();
    assert_eq!(st["forwarded"]["bytes"], data.len() as u64);

    // Again: every store already has it, and says so.
    let r = put_chain(&s[0], &rest, &data, &hex);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["forwarded"][1]["created"], false);
}

#[test]
fn a_dead_next_store_leaves_this_copy_and_reports_it_unreached() {
    let dir = TempDir::new("chain-dead");
    let s1 = store(&dir, 1);
    let dead = format!("http://127.0.0.1:{}", free_port());
    let data = random_bytes(200_000, 2);
    let hex = sha256_hex(&data);
    let r = put_chain(&s1, std::slice::from_ref(&dead), &data, &hex);
    assert_eq!(r.status, 201, "{}", r.text());
    let f = &r.json()["forwarded"][0];
    assert_eq!(f["url"], dead);
    assert_eq!(f["status"], 0, "{f}");
    assert_eq!(f["code"], "ForwardFailed");
    assert_eq!(holds(&s1, &hex).as_deref(), Some(&data[..]));
}

#[test]
fn a_bad_chunk_is_refused_by_every_store_of_the_chain() {
    let dir = TempDir::new("chain-bad");
    let s: Vec<Daemon> = (1..=2).map(|i| store(&dir, i)).collect();
    let data = random_bytes(300_000, 3);
    let wrong = sha256_hex(b"something else");
    let r = put_chain(&s[0], &[s[1].url()], &data, &wrong);
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.json()["code"], "HashMismatch");
    let f = &r.json()["forwarded"][0];
    assert_eq!(f["status"], 422, "{f}");
    assert_eq!(f["code"], "HashMismatch");
    for st in &s {
        assert_eq!(holds(st, &wrong), None);
    }
    for i in 1..=2 {
        let tmp = dir.path().join(format!("store{i}/tmp"));
        assert!(
            files_under(&tmp).is_empty(),
            "store{i} left a temporary file"
        );
    }
}

#[test]
fn bad_chain_headers_are_refused_and_store_nothing() {
    let dir = TempDir::new("chain-hdr");
    let s1 = store(&dir, 1);
    let data = b"some chunk".to_vec();
    let hex = sha256_hex(&data);
    for bad in ["file:///etc/passwd", " "] {
        let r = put_chain(&s1, &[bad.to_string()], &data, &hex);
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text());
        assert_eq!(r.json()["code"], "InvalidForward");
    }
    let many: Vec<String> = (0..9)
        .map(|i| format!("http://127.0.0.1:{}", 1000 + i))
        .collect();
    let r = put_chain(&s1, &many, &data, &hex);
    assert_eq!(r.status, 400);
    // Forwarding is a chunk write: without the token it is refused like any other.
    let r = request(
        "PUT",
        &format!("{}/chunks/{hex}", s1.url()),
        &[("X-Dpyfs-Forward", "http://127.0.0.1:1")],
        Some(&data),
    )
    .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(holds(&s1, &hex), None);
}

/// The director's side: with chain replication (the default) a large object's chunks are
/// sent once and forwarded by the stores; with `--replication fanout` nothing is
/// forwarded. Either way every chunk has its two copies and the object reads back.
#[test]
fn the_director_sends_each_chunk_once_in_chain_mode() {
    for (mode, forwards) in [("chain", true), ("fanout", false)] {
        let dir = TempDir::new(&format!("chain-dir-{mode}"));
        let c = Cluster::start(&dir, 3, 2, &["--replication", mode]);
        assert_eq!(put(&format!("{}/bkt", c.url()), b"").unwrap().status, 200);
        let body = random_bytes(12 << 20, 5);
        let url = format!("{}/bkt/big", c.url());
        assert_eq!(put(&url, &body).unwrap().status, 200);
        assert_eq!(get(&url).unwrap().body, body);
        let stats: Vec<serde_json::Value> = c
            .stores
            .iter()
            .map(|s| get(&format!("{}/status", s.url())).unwrap().json())
            .collect();
        let forwarded: u64 = stats
            .iter()
            .map(|s| s["forwarded"]["bytes"].as_u64().unwrap())
            .sum();
        let stored: u64 = stats
            .iter()
            .map(|s| s["chunks"]["bytes"].as_u64().unwrap())
            .sum();
        // Two copies of every data chunk (and of the manifest).
        assert!(
            stored >= 2 * body.len() as u64,
            "{mode}: {stored} bytes stored"
        );
        if forwards {
            // Every chunk but a last one under CHAIN_BYTES_MIN (64 KiB) went by chain.
            assert!(
                forwarded + 64 * 1024 >= body.len() as u64,
                "{mode}: only {forwarded} bytes forwarded"
            );
        } else {
            assert_eq!(forwarded, 0, "{mode}");
        }
    }
}

/// A store of the chain that dies: its copies go elsewhere, the PUT is acknowledged with
/// two copies of every chunk, and the object reads back with any one store gone.
#[test]
fn a_store_gone_from_the_chain_costs_time_not_copies() {
    let dir = TempDir::new("chain-gone");
    let mut c = Cluster::start(&dir, 3, 2, &[]);
    assert_eq!(put(&format!("{}/bkt", c.url()), b"").unwrap().status, 200);
    c.stores[1].kill();
    let body = random_bytes(6 << 20, 6);
    let url = format!("{}/bkt/obj", c.url());
    assert_eq!(put(&url, &body).unwrap().status, 200);
    c.stores[1].restart();
    c.wait_stores_up(3);
    for i in [0, 2] {
        c.stores[i].kill();
        assert_eq!(get(&url).unwrap().body, body, "store {} down", i + 1);
        c.stores[i].restart();
        c.wait_stores_up(3);
    }
}

/// A next store that takes another token refuses the forward: this store keeps its copy,
/// the report says 401 for the next one, and the next store holds nothing.
#[test]
fn a_next_store_with_another_token_refuses_the_forward() {
    let dir = TempDir::new("chain-401");
    let s1 = store(&dir, 1);
    let other = dir.path().join("other.token");
    fs::write(&other, "another-token-of-twenty-six\n").unwrap();
    let s2 = Cluster::store(&dir, 2, &["--token-file", other.to_str().unwrap()]);
    let data = random_bytes(100_000, 7);
    let hex = sha256_hex(&data);
    let r = put_chain(&s1, &[s2.url()], &data, &hex);
    assert_eq!(r.status, 201, "{}", r.text());
    let f = &r.json()["forwarded"][0];
    assert_eq!(f["status"], 401, "{f}");
    assert_eq!(f["code"], "Unauthorized");
    assert_eq!(holds(&s1, &hex).as_deref(), Some(&data[..]));
    let r = request(
        "GET",
        &format!("{}/chunks/{hex}", s2.url()),
        &[("Authorization", "Bearer another-token-of-twenty-six")],
        None,
    )
    .unwrap();
    assert_eq!(r.status, 404, "the refused store holds the chunk");
}
