//! `make bench`: measures dpyfs next to this machine's own limits, in the same run, and
//! reports ratios. Starts the real release binaries on 127.0.0.1 in a temporary directory.
//! `BENCH_QUICK=1` runs smaller sizes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::time::Instant;

const MIB: f64 = 1024.0 * 1024.0;

struct Row {
    name: String,
    value: f64,
    unit: &'static str,
    limit_name: String,
    limit: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Runs `f` `n` times and returns the median of what it returns.
fn repeat(n: usize, mut f: impl FnMut() -> f64) -> f64 {
    median((0..n).map(|_| f()).collect())
}

fn sha256_mibs(buf: &[u8]) -> f64 {
    let t = Instant::now();
    let h = dpyfs::hash::Hash::of(buf);
    std::hint::black_box(h);
    buf.len() as f64 / MIB / t.elapsed().as_secs_f64()
}

/// Sequential write of `total` bytes with one fsync at the end, in `dir`.
fn disk_write_mibs(dir: &std::path::Path, total: usize) -> f64 {
    let block = random_bytes(4 << 20, 77);
    let p = dir.join("disk-probe");
    let t = Instant::now();
    let mut f = fs::File::create(&p).unwrap();
    let mut done = 0;
    while done < total {
        f.write_all(&block).unwrap();
        done += block.len();
    }
    f.sync_all().unwrap();
    let s = t.elapsed().as_secs_f64();
    drop(f);
    fs::remove_file(&p).unwrap();
    done as f64 / MIB / s
}

fn store_put_get(dir: &TempDir, chunks: &[Vec<u8>]) -> (f64, f64) {
    let data = dir.path().join(format!("store-{}", free_port()));
    let s = Daemon::start(
        "dpyfs-store",
        &[
            "--listen",
            "127.0.0.1:{port}",
            "--data",
            data.to_str().unwrap(),
            "--scrub-rate",
            "0",
            "--reserve",
            "0",
        ],
        dir.path(),
    );
    let agent = ureq::AgentBuilder::new().build();
    let total: usize = chunks.iter().map(Vec::len).sum();
    let urls: Vec<String> = chunks
        .iter()
        .map(|c| format!("{}/chunks/{}", s.url(), sha256_hex(c)))
        .collect();
    let t = Instant::now();
    for (u, c) in urls.iter().zip(chunks) {
        let r = agent.put(u).send_bytes(c).unwrap();
        assert_eq!(r.status(), 201);
    }
    let put = total as f64 / MIB / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut got = 0usize;
    for u in &urls {
        let mut r = agent.get(u).call().unwrap().into_reader();
        got += std::io::copy(&mut r, &mut std::io::sink()).unwrap() as usize;
    }
    let get = got as f64 / MIB / t.elapsed().as_secs_f64();
    assert_eq!(got, total);
    drop(s);
    fs::remove_dir_all(&data).unwrap();
    (put, get)
}

/// PUT then GET of one `mib` MiB object through a fresh 3-store cluster (N=2).
fn cluster_put_get(dir: &TempDir, mib: u64, seed: u64) -> (f64, f64) {
    let sub = TempDir(dir.path().join(format!("cluster-{seed}")));
    fs::create_dir_all(sub.path()).unwrap();
    let c = Cluster::start(&sub, 3, 2, &[]);
    let agent = ureq::AgentBuilder::new().build();
    agent.put(&format!("{}/bench", c.url())).call().unwrap();
    let url = format!("{}/bench/big", c.url());
    let len = mib << 20;
    let t = Instant::now();
    let r = agent
        .put(&url)
        .set("Content-Length", &len.to_string())
        .send(GenReader::new(len, seed))
        .unwrap();
    assert_eq!(r.status(), 200);
    let put = mib as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut body = agent.get(&url).call().unwrap().into_reader();
    let n = std::io::copy(&mut body, &mut std::io::sink()).unwrap();
    let get = mib as f64 / t.elapsed().as_secs_f64();
    assert_eq!(n, len);
    drop(c);
    drop(sub);
    (put, get)
}

/// Fills a 3-store cluster (N=2) with one `mib` MiB object, wipes store 1, restarts it
/// empty and times one repair pass; returns MiB/s re-replicated.
fn repair_mibs(dir: &TempDir, mib: u64) -> f64 {
    let sub = TempDir(dir.path().join(format!("repair-{}", free_port())));
    fs::create_dir_all(sub.path()).unwrap();
    let knobs = [
        "--repair-rate",
        "0",
        "--repair-interval",
        "3600",
        "--lost-after",
        "3600",
    ];
    let mut c = Cluster::start(&sub, 3, 2, &knobs);
    let agent = ureq::AgentBuilder::new().build();
    agent.put(&format!("{}/bench", c.url())).call().unwrap();
    let len = mib << 20;
    agent
        .put(&format!("{}/bench/big", c.url()))
        .set("Content-Length", &len.to_string())
        .send(GenReader::new(len, 7))
        .unwrap();
    c.stores[0].kill();
    fs::remove_dir_all(sub.path().join("store1")).unwrap();
    c.stores[0].restart();
    c.wait_stores_up(3);
    // Let the pass that the store's return triggers finish first, then time a fresh one
    // from the wiped state: wipe again.
    let passes = |c: &Cluster| get(&format!("{}/_dpyfs/repair", c.url())).unwrap().json();
    wait_for(600_000, "the automatic pass", || {
        (passes(&c)["running"] == false).then_some(())
    });
    c.stores[0].kill();
    fs::remove_dir_all(sub.path().join("store1")).unwrap();
    c.stores[0].restart();
    let before = passes(&c)["passes"].as_u64().unwrap();
    let t = Instant::now();
    agent
        .post(&format!("{}/_dpyfs/repair", c.url()))
        .call()
        .unwrap();
    let r = wait_for(600_000, "the repair pass", || {
        let r = passes(&c);
        (r["passes"].as_u64().unwrap() > before
            && r["running"] == false
            && r["under_replicated"] == 0)
            .then_some(r)
    });
    // The pass's own start and end: it may have been started by the store's return just
    // before the request.
    let secs =
        (r["finished_ms"].as_u64().unwrap() - r["started_ms"].as_u64().unwrap()) as f64 / 1000.0;
    assert!(t.elapsed().as_secs_f64() >= secs * 0.5);
    let bytes = r["bytes_copied"].as_u64().unwrap() as f64;
    assert!(bytes > 0.0, "the timed pass copied nothing: {r}");
    drop(c);
    drop(sub);
    bytes / MIB / secs
}

fn main() {
    let quick = std::env::var("BENCH_QUICK").is_ok();
    let runs = if quick { 3 } else { 5 };
    let mib = if quick { 64 } else { 256 };
    let dir = TempDir::new("bench");
    let mut rows = Vec::new();

    let buf = random_bytes(mib << 20, 1);
    let sha = repeat(runs, || sha256_mibs(&buf));
    let disk = repeat(runs, || disk_write_mibs(dir.path(), mib << 20));
    rows.push(Row {
        name: "SHA-256, one core".into(),
        value: sha,
        unit: "MiB/s",
        limit_name: "-".into(),
        limit: sha,
    });
    rows.push(Row {
        name: "disk write + fsync".into(),
        value: disk,
        unit: "MiB/s",
        limit_name: "-".into(),
        limit: disk,
    });

    // Store: 4 MiB chunks over one kept-alive loopback connection.
    let chunks: Vec<Vec<u8>> = (0..mib / 4)
        .map(|i| random_bytes(4 << 20, 1000 + i as u64))
        .collect();
    let mut puts = Vec::new();
    let mut gets = Vec::new();
    for _ in 0..runs {
        let (p, g) = store_put_get(&dir, &chunks);
        puts.push(p);
        gets.push(g);
    }
    // A PUT hashes every byte once and writes it once with fsync: bounded by both.
    let put_limit = 1.0 / (1.0 / sha + 1.0 / disk);
    rows.push(Row {
        name: "store PUT 4 MiB chunks".into(),
        value: median(puts),
        unit: "MiB/s",
        limit_name: "1/(1/sha+1/disk)".into(),
        limit: put_limit,
    });
    rows.push(Row {
        name: "store GET 4 MiB chunks".into(),
        value: median(gets),
        unit: "MiB/s",
        limit_name: "SHA-256".into(),
        limit: sha,
    });

    // Director: one large object, 3 stores, N=2, single stream each way.
    let obj_mib = if quick { 256 } else { 1024 };
    let (mut puts, mut gets) = (Vec::new(), Vec::new());
    for run in 0..runs.min(3) {
        let (p, g) = cluster_put_get(&dir, obj_mib, run as u64);
        puts.push(p);
        gets.push(g);
    }
    rows.push(Row {
        name: format!("director PUT {obj_mib} MiB, N=2"),
        value: median(puts),
        unit: "MiB/s",
        limit_name: "disk write / 2".into(),
        limit: disk / 2.0,
    });
    rows.push(Row {
        name: format!("director GET {obj_mib} MiB"),
        value: median(gets),
        unit: "MiB/s",
        limit_name: "SHA-256".into(),
        limit: sha,
    });

    // Repair: one store's data wiped; time to re-replicate, unthrottled.
    let rep_mib = if quick { 128 } else { 512 };
    let rep = repeat(runs.min(3), || repair_mibs(&dir, rep_mib));
    rows.push(Row {
        name: format!("repair after wipe ({rep_mib} MiB)"),
        value: rep,
        unit: "MiB/s",
        limit_name: "disk write".into(),
        limit: disk,
    });

    let sizes: Vec<(String, u64)> = ["dpyfs-store", "dpyfs-director", "dpyfs"]
        .iter()
        .map(|b| {
            (
                b.to_string(),
                fs::metadata(bin(b)).map(|m| m.len()).unwrap_or(0),
            )
        })
        .collect();

    println!(
        "{:<28} {:>10} {:<6} {:>20} {:>10} {:>6}",
        "measure", "value", "unit", "limit", "limit val", "ratio"
    );
    for r in &rows {
        println!(
            "{:<32} {:>10.1} {:<6} {:>20} {:>10.1} {:>6.2}",
            r.name,
            r.value,
            r.unit,
            r.limit_name,
            r.limit,
            r.value / r.limit
        );
    }
    for (b, s) in &sizes {
        println!("binary {b}: {} bytes", s);
    }
    let json = serde_json::json!({
        "quick": quick,
        "rows": rows.iter().map(|r| serde_json::json!({
            "name": r.name, "value": r.value, "unit": r.unit,
            "limit_name": r.limit_name, "limit": r.limit, "ratio": r.value / r.limit,
        })).collect::<Vec<_>>(),
        "binary_bytes": sizes.iter().map(|(b, s)| (b.clone(), *s)).collect::<std::collections::BTreeMap<_, _>>(),
    });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench");
    fs::create_dir_all(&out).unwrap();
    fs::write(
        out.join("latest.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    )
    .unwrap();
    println!("written: target/bench/latest.json");
}
