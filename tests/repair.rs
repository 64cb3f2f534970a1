//! Keeping the data safe (issue 5): repair after a wiped or lost store, rebalance when a
//! store joins, drain and remove, corruption healed, garbage collection (also racing
//! uploads), fsck, and `dpyfs recover`. Real stores and director on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::upkeep::*;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Uploads `n` objects of assorted sizes; returns key -> bytes.
fn fill(c: &Cluster, bucket: &str, n: u64, seed: u64) -> BTreeMap<String, Vec<u8>> {
    (0..n)
        .map(|i| {
            let data = random_bytes(
                50_000 + ((i * 7919 + seed) % 9) as usize * 300_000,
                seed + i,
            );
            let key = format!("obj-{seed}-{i}");
            let r = put(&format!("{}/{bucket}/{key}", c.url()), &data).unwrap();
            assert_eq!(r.status, 200, "PUT {bucket}/{key}: {}", r.text());
            (key, data)
        })
        .collect()
}

fn all_read_back(c: &Cluster, bucket: &str, objects: &BTreeMap<String, Vec<u8>>) {
    for (k, data) in objects {
        let g = get(&format!("{}/{bucket}/{k}", c.url())).unwrap();
        assert_eq!(g.status, 200, "{k}");
        assert!(g.body == *data, "{k} differs");
    }
}

/// Store id -> the chunk names it holds.
fn holdings(c: &Cluster) -> BTreeMap<String, BTreeSet<String>> {
    c.stores
        .iter()
        .filter_map(|s| {
            let st = get(&format!("{}/status", s.url())).ok()?.json();
            let list = get(&format!("{}/chunks?limit=100000", s.url()))
                .ok()?
                .text();
            Some((
                st["id"].as_str()?.to_string(),
                list.lines().map(str::to_string).collect(),
            ))
        })
        .collect()
}

/// Every chunk (and manifest) of every object is on exactly the stores placement names.
fn placement_matches(c: &Cluster, bucket: &str, keys: impl Iterator<Item = String>) {
    let held = holdings(c);
    for k in keys {
        let loc = get(&format!("{}/_dpyfs/object/{bucket}/{k}", c.url()))
            .unwrap()
            .json();
        let mut all: Vec<&Value> = loc["chunks"].as_array().unwrap().iter().collect();
        all.push(&loc["manifest"]);
        for ch in all {
            let h = ch["hash"].as_str().unwrap();
            let want: BTreeSet<&str> = ch["placement"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            let have: BTreeSet<&str> = held
                .iter()
                .filter(|(_, hs)| hs.contains(h))
                .map(|(id, _)| id.as_str())
                .collect();
            assert_eq!(have, want, "{k}: chunk {h}");
        }
    }
}

fn repair(c: &Cluster) -> Value {
    ok(&dpyfs(c, &["admin", "repair"]));
    get(&format!("{}/_dpyfs/repair", c.url())).unwrap().json()
}

#[test]
fn wiped_store_is_refilled_by_repair() {
    let dir = TempDir::new("rep-wipe");
    let mut c = Cluster::start(&dir, 3, 2, KNOBS);
    mkbucket(&c, "wipe");
    let objects = fill(&c, "wipe", 12, 1);
    c.stores[0].kill();
    fs::remove_dir_all(dir.path().join("store1")).unwrap();
    c.stores[0].restart();
    c.wait_stores_up(3);
    let fsck = dpyfs(&c, &["fsck"]);
    assert!(
        !fsck.status.success(),
        "fsck must fail while copies are missing"
    );
    assert!(String::from_utf8_lossy(&fsck.stdout).contains("UNDER-REPLICATED"));
    let r = repair(&c);
    // The copies may come from this pass or from the one the store's return started
    // already: either way the wiped store holds chunks again.
    let refilled = files_under(&dir.path().join("store1").join("chunks")).len();
    assert!(refilled > 0, "nothing copied back to the wiped store: {r}");
    assert_eq!(r["under_replicated"], 0, "{r}");
    assert_eq!(r["lost_chunks"], 0);
    placement_matches(&c, "wipe", objects.keys().cloned());
    all_read_back(&c, "wipe", &objects);
    ok(&dpyfs(&c, &["fsck", "--deep"]));
}

#[test]
fn a_short_outage_copies_nothing_and_a_long_one_re_replicates() {
    // Short: the store is down for less than --lost-after.
    let dir = TempDir::new("rep-grace");
    let mut c = Cluster::start(&dir, 3, 2, &[KNOBS, &["--lost-after", "3600"]].concat());
    mkbucket(&c, "grace");
    let objects = fill(&c, "grace", 8, 2);
    c.stores[1].kill();
    c.wait_stores_up(2);
    // Repair reports the under-replication (exit 1) but copies nothing yet.
    let out = dpyfs(&c, &["admin", "repair"]);
    assert!(!out.status.success());
    let r = get(&format!("{}/_dpyfs/repair", c.url())).unwrap().json();
    assert_eq!(
        r["copies_made"], 0,
        "copies made during a short outage: {r}"
    );
    assert!(r["waiting_for_down_stores"].as_u64().unwrap() > 0, "{r}");
    all_read_back(&c, "grace", &objects);
    c.stores[1].restart();
    c.wait_stores_up(3);
    let r = repair(&c);
    assert_eq!(r["copies_made"], 0, "{r}");
    ok(&dpyfs(&c, &["fsck"]));
    drop(c);

    // Long: the store stays down past --lost-after; its chunks get new copies, and when it
    // comes back the surplus goes and nothing is lost.
    let dir = TempDir::new("rep-lost");
    let mut c = Cluster::start(&dir, 3, 2, &[KNOBS, &["--lost-after", "2"]].concat());
    mkbucket(&c, "lost");
    let objects = fill(&c, "lost", 8, 3);
    c.stores[1].kill();
    wait_for(30_000, "the store to count as lost", || {
        c.status()["stores"]
            .as_array()?
            .iter()
            .any(|s| s["lost"] == true)
            .then_some(())
    });
    // The store turning lost starts a pass by itself; this one waits for the result.
    let r = repair(&c);
    assert_eq!(r["under_replicated"], 0, "{r}");
    // Two verified copies of everything on the two live stores: re-replicated.
    ok(&dpyfs(&c, &["fsck"]));
    let held = holdings(&c);
    assert!(
        held.values()
            .all(|s| s.len() == held.values().next().unwrap().len())
    );
    all_read_back(&c, "lost", &objects);
    c.stores[1].restart();
    c.wait_stores_up(3);
    repair(&c);
    // Back to exactly the placement: the surplus copies are gone, nothing else is.
    placement_matches(&c, "lost", objects.keys().cloned());
    all_read_back(&c, "lost", &objects);
    ok(&dpyfs(&c, &["fsck"]));
}

#[test]
fn a_new_store_takes_about_a_quarter_of_the_copies() {
    let dir = TempDir::new("rep-add");
    let mut c = Cluster::start(&dir, 3, 2, KNOBS);
    mkbucket(&c, "addst");
    let objects = fill(&c, "addst", 40, 4);
    let before: usize = holdings(&c).values().map(BTreeSet::len).sum();
    c.stores
        .push(Cluster::store(&dir, 4, &["--scrub-rate", "0"]));
    let url = c.stores[3].url();
    let out = ok(&dpyfs(&c, &["admin", "store", "add", &url, "--zone", "z4"]));
    assert!(out.contains("added store s4"), "{out}");
    // Adding it again is refused.
    assert!(!dpyfs(&c, &["admin", "store", "add", &url]).status.success());
    c.wait_stores_up(4);
    // Adding a store starts a pass by itself; this one waits for the cluster to settle.
    // How the moves split between the two passes depends on timing, so only the end
    // state is checked: the same number of copies, a fair share on the new store.
    let r = repair(&c);
    let held = holdings(&c);
    let after: usize = held.values().map(BTreeSet::len).sum();
    assert_eq!(after, before, "copies were added or lost, not moved");
    let moved = held["s4"].len() as f64 / before as f64;
    eprintln!("adding a 4th store moved {moved:.2} of {before} copies");
    assert!(
        (0.12..=0.40).contains(&moved),
        "moved {moved} of the copies: {r}"
    );
    placement_matches(&c, "addst", objects.keys().cloned());
    all_read_back(&c, "addst", &objects);
    let list = ok(&dpyfs(&c, &["admin", "store", "list"]));
    assert!(list.contains("s4") && list.contains("z4"), "{list}");
}

#[test]
fn drain_then_remove_never_loses_a_copy() {
    let dir = TempDir::new("rep-drain");
    let c = Cluster::start(&dir, 3, 2, KNOBS);
    mkbucket(&c, "drain");
    let objects = fill(&c, "drain", 15, 5);
    ok(&dpyfs(&c, &["admin", "store", "drain", "s1"]));
    // Draining: s1 takes no new copies, but its chunks are still counted until moved.
    ok(&dpyfs(&c, &["fsck"]));
    let r = repair(&c);
    assert_eq!(r["under_replicated"], 0, "{r}");
    ok(&dpyfs(&c, &["fsck"]));
    let held = holdings(&c);
    assert!(
        held["s1"].is_empty(),
        "s1 still holds {} chunks after draining",
        held["s1"].len()
    );
    ok(&dpyfs(&c, &["admin", "store", "remove", "s1"]));
    ok(&dpyfs(&c, &["fsck", "--deep"]));
    all_read_back(&c, "drain", &objects);
    let more = fill(&c, "drain", 3, 6);
    assert!(
        holdings(&c)["s1"].is_empty(),
        "a removed store got new chunks"
    );
    all_read_back(&c, "drain", &more);
}

#[test]
fn removing_the_only_holder_is_refused() {
    let dir = TempDir::new("rep-only");
    let c = Cluster::start(&dir, 2, 1, KNOBS);
    mkbucket(&c, "only");
    fill(&c, "only", 6, 7);
    let held = holdings(&c);
    let (id, _) = held.iter().find(|(_, hs)| !hs.is_empty()).unwrap();
    let out = dpyfs(&c, &["admin", "store", "remove", id]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("only copy"),
        "{out:?}"
    );
    ok(&dpyfs(&c, &["fsck"]));
}

#[test]
fn corruption_found_by_the_scrubber_is_healed_by_repair() {
    let dir = TempDir::new("rep-rot");
    let c = Cluster::start_with(
        &dir,
        3,
        2,
        KNOBS,
        &["--scrub-rate", "64", "--scrub-pause", "1"],
    );
    mkbucket(&c, "rot");
    let objects = fill(&c, "rot", 4, 8);
    let (key, _) = objects.iter().next().unwrap();
    let loc = get(&format!("{}/_dpyfs/object/rot/{key}", c.url()))
        .unwrap()
        .json();
    let h = loc["chunks"][0]["hash"].as_str().unwrap().to_string();
    let victim = loc["chunks"][0]["placement"][0]
        .as_str()
        .unwrap()
        .to_string();
    let n: usize = victim[1..].parse().unwrap();
    let path = dir
        .path()
        .join(format!("store{n}/chunks/{}/{}/{h}", &h[0..2], &h[2..4]));
    let mut bytes = fs::read(&path).unwrap();
    bytes[100] ^= 1;
    fs::write(&path, bytes).unwrap();
    let store = &c.stores[n - 1];
    wait_for(30_000, "the scrubber to quarantine the copy", || {
        let st = get(&format!("{}/status", store.url())).ok()?.json();
        (st["scrub"]["corrupt_found"] == 1).then_some(())
    });
    assert!(!path.exists());
    // The end state is what counts: the director may have started a pass of its own when
    // the store reported the corruption, and made the copy before the one asked for here.
    repair(&c);
    assert_eq!(
        sha256_hex(&fs::read(&path).unwrap()),
        h,
        "copy not re-created"
    );
    ok(&dpyfs(&c, &["fsck", "--deep"]));
}

/// Issue 18, item 6: rot found by `fsck --deep` is quarantined by the stores at once, so
/// the repair right after it heals every copy (before, the rotten copies stayed in place
/// and counted as good until the next scrub pass).
#[test]
fn rot_found_by_a_deep_check_is_healed_by_the_repair_right_after() {
    let dir = TempDir::new("rep-deep");
    // No scrubber: only the deep check can find the rot.
    let c = Cluster::start_with(&dir, 3, 2, KNOBS, &["--scrub-rate", "0"]);
    mkbucket(&c, "rot");
    let objects = fill(&c, "rot", 6, 21);
    // One byte flipped in one copy of each of the first chunks of every object (of the
    // manifest, which holds the bytes, of a small object).
    let mut rotten = Vec::new();
    for key in objects.keys() {
        let loc = get(&format!("{}/_dpyfs/object/rot/{key}", c.url()))
            .unwrap()
            .json();
        let first = if loc["inline"] == true {
            &loc["manifest"]
        } else {
            &loc["chunks"][0]
        };
        let h = first["hash"].as_str().unwrap().to_string();
        let holder = first["placement"][0].as_str().unwrap();
        let n: usize = holder[1..].parse().unwrap();
        let path = dir
            .path()
            .join(format!("store{n}/chunks/{}/{}/{h}", &h[0..2], &h[2..4]));
        let mut bytes = fs::read(&path).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x20;
        fs::write(&path, bytes).unwrap();
        rotten.push((path, h));
    }
    // A shallow check counts files and cannot see it; the deep one re-hashes every copy.
    ok(&dpyfs(&c, &["fsck"]));
    let deep = dpyfs(&c, &["fsck", "--deep"]);
    assert!(!deep.status.success(), "the deep check must report the rot");
    assert!(String::from_utf8_lossy(&deep.stdout).contains("UNDER-REPLICATED"));
    for (path, _) in &rotten {
        assert!(!path.exists(), "{} not quarantined", path.display());
    }
    let quarantined: usize = (1..=3)
        .map(|i| files_under(&dir.path().join(format!("store{i}/quarantine"))).len())
        .sum();
    assert_eq!(quarantined, rotten.len());
    // The end state is what counts: a background pass may have made some of the copies
    // before the one asked for here.
    repair(&c);
    for (path, h) in &rotten {
        assert_eq!(
            &sha256_hex(&fs::read(path).unwrap()),
            h,
            "{}",
            path.display()
        );
    }
    ok(&dpyfs(&c, &["fsck", "--deep"]));
    all_read_back(&c, "rot", &objects);
}

#[test]
fn gc_removes_unreferenced_chunks_and_keeps_shared_ones() {
    let dir = TempDir::new("rep-gc");
    let c = Cluster::start(&dir, 3, 2, KNOBS);
    mkbucket(&c, "gcb");
    let a = random_bytes(6 << 20, 90);
    let mut b = a[..4 << 20].to_vec();
    b.extend(random_bytes(2 << 20, 91));
    let url = |k: &str| format!("{}/gcb/{k}", c.url());
    assert_eq!(put(&url("a"), &a).unwrap().status, 200);
    assert_eq!(put(&url("b"), &b).unwrap().status, 200);
    let chunks = |k: &str| -> BTreeSet<String> {
        let loc = get(&format!("{}/_dpyfs/object/gcb/{k}", c.url()))
            .unwrap()
            .json();
        let mut s: BTreeSet<String> = loc["chunks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["hash"].as_str().unwrap().to_string())
            .collect();
        s.insert(loc["manifest"]["hash"].as_str().unwrap().to_string());
        s
    };
    let (ca, cb) = (chunks("a"), chunks("b"));
    let shared: BTreeSet<_> = ca.intersection(&cb).cloned().collect();
    assert!(
        !shared.is_empty(),
        "the two objects share no chunk; the test proves nothing"
    );
    assert_eq!(request("DELETE", &url("a"), &[], None).unwrap().status, 204);
    let dry = ok(&dpyfs(&c, &["admin", "gc", "--dry-run"]));
    assert!(dry.contains("would delete"), "{dry}");
    let held = holdings(&c);
    assert!(
        ca.iter().all(|h| held.values().any(|s| s.contains(h))),
        "dry run deleted something"
    );
    // (Exit 1 means a store could not be listed this time, e.g. a missed poll on a busy
    // machine: its copies wait for the next pass. Try again, a bounded number of times.)
    let out = wait_for(30_000, "a complete gc pass", || {
        let o = dpyfs(&c, &["admin", "gc"]);
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    });
    assert!(out.contains("deleted"), "{out}");
    let held = holdings(&c);
    for h in ca.difference(&cb) {
        assert!(
            held.values().all(|s| !s.contains(h)),
            "unique chunk {h} of the deleted object survived gc"
        );
    }
    for h in &cb {
        assert!(
            held.values().any(|s| s.contains(h)),
            "chunk {h} of a live object was collected"
        );
    }
    assert!(get(&url("b")).unwrap().body == b);
    ok(&dpyfs(&c, &["fsck"]));
}

/// GC with no grace period runs again and again while uploads of overlapping content go
/// on: every acknowledged upload reads back whole.
#[test]
fn gc_racing_uploads_never_deletes_what_an_upload_needs() {
    let dir = TempDir::new("rep-gcrace");
    let c = Cluster::start(&dir, 3, 2, KNOBS);
    mkbucket(&c, "race");
    let base = random_bytes(3 << 20, 200);
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..3u64)
        .map(|t| {
            let (url, base, acked, stop) = (c.url(), base.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Shared prefix (dedup against chunks GC may be looking at) + unique tail.
                    let mut data = base[..(1 << 20) + ((i as usize * 4099) % (2 << 20))].to_vec();
                    data.extend(random_bytes(100_000, t * 1000 + i));
                    let key = format!("t{t}-{i}");
                    if put(&format!("{url}/race/{key}"), &data).is_ok_and(|r| r.status == 200) {
                        acked.lock().unwrap().push((key.clone(), sha256_hex(&data)));
                    }
                    // Delete some, so that GC has real work.
                    if i % 3 == 0 {
                        let _ = request("DELETE", &format!("{url}/race/{key}"), &[], None);
                        acked.lock().unwrap().retain(|(k, _)| *k != key);
                    }
                    i += 1;
                }
            })
        })
        .collect();
    let mut passes = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(12);
    while std::time::Instant::now() < deadline {
        // Exit 1 (a store not listed this time) still ran the pass on the others.
        passes += usize::from(dpyfs(&c, &["admin", "gc"]).status.success());
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    dpyfs(&c, &["admin", "gc"]);
    let acked = acked.lock().unwrap();
    eprintln!(
        "{} uploads kept alive through {passes} gc passes",
        acked.len()
    );
    assert!(
        acked.len() >= 5 && passes >= 3,
        "too little happened to mean anything"
    );
    for (k, sum) in acked.iter() {
        let g = get(&format!("{}/race/{k}", c.url())).unwrap();
        assert_eq!(g.status, 200, "{k}");
        assert_eq!(&sha256_hex(&g.body), sum, "{k} damaged by gc");
    }
    ok(&dpyfs(&c, &["fsck"]));
}

#[test]
fn recover_rebuilds_the_namespace_from_the_stores() {
    let dir = TempDir::new("rep-recover");
    let mut c = Cluster::start(&dir, 3, 2, KNOBS);
    mkbucket(&c, "photos");
    mkbucket(&c, "docs");
    let objects = fill(&c, "photos", 6, 9);
    let r = request(
        "PUT",
        &format!("{}/docs/readme.txt", c.url()),
        &[("Content-Type", "text/plain"), ("x-amz-meta-author", "ann")],
        Some(b"version one"),
    )
    .unwrap();
    assert_eq!(r.status, 200);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(
        put(&format!("{}/docs/readme.txt", c.url()), b"version two")
            .unwrap()
            .status,
        200
    );
    // The director's disk is lost.
    c.director.kill();
    fs::remove_dir_all(dir.path().join("director")).unwrap();
    let args = recover_args(&c, &dir.path().join("director"));
    let out = command("dpyfs").args(&args).output().unwrap();
    let text = ok(&out);
    assert!(text.contains("recovered 7 objects in 2 buckets"), "{text}");
    assert!(text.contains("1 older versions skipped"), "{text}");
    // Recovering into a directory that has a journal is refused.
    assert!(
        !command("dpyfs")
            .args(&args)
            .output()
            .unwrap()
            .status
            .success()
    );
    c.director.restart();
    c.wait_stores_up(3);
    all_read_back(&c, "photos", &objects);
    let g = get(&format!("{}/docs/readme.txt", c.url())).unwrap();
    assert_eq!(g.body, b"version two");
    let g = request(
        "HEAD",
        &format!("{}/photos/{}", c.url(), objects.keys().next().unwrap()),
        &[],
        None,
    )
    .unwrap();
    assert_eq!(g.status, 200);
    ok(&dpyfs(&c, &["fsck"]));
}
